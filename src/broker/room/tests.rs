//! The room driven directly, without sockets: what each client's send
//! queue and the server's standard output hold after each event.

use super::*;
use proptest::prelude::*;
use std::io::IoSlice;

fn limits() -> Limits {
    Limits {
        max_line: 1000,
        max_queue: 100_000,
        allow_remote_stop: false,
        clean: true,
        stall_timeout: Duration::from_secs(10),
        history: 0,
    }
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([192, 168, 1, i as u8], 50000 + i))
}

/// Everything queued for `id` since the last call, as text; the queue is
/// then empty (as if the event loop had written it).
fn take(room: &mut Room, id: ClientId) -> String {
    String::from_utf8(take_bytes(room, id)).unwrap()
}

fn take_bytes(room: &mut Room, id: ClientId) -> Vec<u8> {
    room.flush();
    let (queue, log) = room.outbox(id).expect("client has a slot");
    let bytes = queue.contents(log);
    queue.advance(log, bytes.len());
    bytes
}

fn take_stdout(room: &mut Room) -> String {
    room.flush();
    let (queue, log) = room.stdout_outbox();
    let bytes = queue.contents(log);
    queue.advance(log, bytes.len());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What waits for `id`, as the event loop would write it.
fn contents(room: &mut Room, id: ClientId) -> Vec<u8> {
    room.flush();
    let (queue, log) = room.outbox(id).expect("client has a slot");
    queue.contents(log)
}

/// The slices of one `writev` to `id`.
fn slices(room: &mut Room, id: ClientId) -> Vec<Vec<u8>> {
    room.flush();
    let (queue, log) = room.outbox(id).expect("client has a slot");
    let mut iov = [IoSlice::new(&[]); 64];
    let n = queue.io_slices(log, &mut iov, usize::MAX);
    iov[..n].iter().map(|s| s.to_vec()).collect()
}

fn actions(room: &mut Room) -> Vec<Action> {
    room.flush();
    let mut out = Vec::new();
    room.take_actions(&mut out);
    out
}

/// A room with `n` clients, all queues and standard output emptied.
fn room_of(n: u16, limits: Limits) -> (Room, Vec<ClientId>) {
    let mut room = Room::new(limits);
    let ids: Vec<ClientId> = (1..=n).map(|i| room.join(addr(i))).collect();
    for &id in &ids {
        take(&mut room, id);
    }
    take_stdout(&mut room);
    (room, ids)
}

#[test]
fn a_newcomer_is_greeted_and_announced() {
    let mut room = Room::new(limits());
    let a = room.join(addr(1));
    assert_eq!(
        take(&mut room, a),
        "-!- you are 192.168.1.1:50001; nobody else is here; /help lists the commands\n"
    );
    let b = room.join(addr(2));
    assert_eq!(take(&mut room, a), "-!- 192.168.1.2:50002 joined\n");
    assert_eq!(
        take(&mut room, b),
        "-!- you are 192.168.1.2:50002; here: 192.168.1.1:50001; /help lists the commands\n"
    );
    assert_eq!(
        take_stdout(&mut room),
        "-!- 192.168.1.1:50001 joined\n-!- 192.168.1.2:50002 joined\n"
    );
    assert_eq!(room.members(), 2);
}

#[test]
fn a_line_goes_to_every_other_client_once_never_back() {
    let (mut room, ids) = room_of(4, limits());
    room.receive(ids[0], b"hello\n");
    assert_eq!(take(&mut room, ids[0]), "");
    for &id in &ids[1..] {
        assert_eq!(take(&mut room, id), "[192.168.1.1:50001] hello\n");
    }
    assert_eq!(take_stdout(&mut room), "[192.168.1.1:50001] hello\n");
}

#[test]
fn a_relayed_line_is_stored_once_and_every_reader_writes_it_from_the_log() {
    let (mut room, ids) = room_of(3, limits());
    let before = room.log().head();
    room.receive(ids[0], b"shared\n");
    room.flush();
    let line = b"[192.168.1.1:50001] shared\n";
    assert_eq!(room.log().head() - before, line.len() as u64, "one copy");
    let pointer = |room: &Room, id: ClientId| {
        let mut iov = [IoSlice::new(&[]); 1];
        room.queue(id)
            .unwrap()
            .io_slices(room.log(), &mut iov, usize::MAX);
        iov[0].as_ptr()
    };
    assert_eq!(
        pointer(&room, ids[1]),
        pointer(&room, ids[2]),
        "same bytes, not a copy"
    );
}

#[test]
fn lines_split_across_reads_are_relayed_whole_never_interleaved() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"hel");
    room.receive(ids[1], b"wor");
    room.receive(ids[1], b"ld\nand more");
    room.receive(ids[0], b"lo\n");
    room.receive(ids[1], b"\n");
    assert_eq!(
        take(&mut room, ids[2]),
        "[192.168.1.2:50002] world\n[192.168.1.1:50001] hello\n[192.168.1.2:50002] and more\n"
    );
}

#[test]
fn the_lines_of_one_read_leave_as_one_run_in_order_with_what_they_cause() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"one\ntwo\n/me waves\nthree\n/nick a\nfour\n");
    // All of it in the log, one run: one slice.
    assert_eq!(slices(&mut room, ids[2]).len(), 1);
    assert_eq!(
        take(&mut room, ids[2]),
        "[192.168.1.1:50001] one\n[192.168.1.1:50001] two\n* 192.168.1.1:50001 waves\n\
         [192.168.1.1:50001] three\n-!- 192.168.1.1:50001 is now a\n[a] four\n"
    );
    assert_eq!(take(&mut room, ids[0]), "-!- you are now a\n");
}

/// How many slices one `writev` to `id` takes.
fn slots(room: &mut Room, id: ClientId) -> usize {
    slices(room, id).len()
}

#[test]
fn the_lines_of_a_turn_are_one_run_and_each_client_gets_it_around_its_own_lines() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"a1\n");
    room.receive(ids[1], b"b1\n");
    room.from_server(b"s1\n");
    room.receive(ids[0], b"a2\n");
    let (a, b) = ("[192.168.1.1:50001]", "[192.168.1.2:50002]");
    // Said nothing: the whole run, one slice.
    assert_eq!(slots(&mut room, ids[2]), 1);
    assert_eq!(
        take(&mut room, ids[2]),
        format!("{a} a1\n{b} b1\n[chatd] s1\n{a} a2\n")
    );
    // The range between its two lines.
    assert_eq!(slots(&mut room, ids[0]), 1);
    assert_eq!(take(&mut room, ids[0]), format!("{b} b1\n[chatd] s1\n"));
    // The ranges before and after its line.
    assert_eq!(slots(&mut room, ids[1]), 2);
    assert_eq!(
        take(&mut room, ids[1]),
        format!("{a} a1\n[chatd] s1\n{a} a2\n")
    );
    // Standard output: the clients' lines, not the server's own.
    assert_eq!(take_stdout(&mut room), format!("{a} a1\n{b} b1\n{a} a2\n"));
}

#[test]
fn a_newcomer_gets_nothing_said_before_it_arrived_and_a_leaver_everything_before_it_left() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"before\n");
    let late = room.join(addr(9));
    room.receive(ids[1], b"after\n");
    room.receive(ids[0], b"bye\n");
    let late_got = take(&mut room, late);
    assert!(!late_got.contains("before"), "{late_got}");
    assert!(
        late_got.contains("[192.168.1.2:50002] after\n"),
        "{late_got}"
    );
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- 192.168.1.9:50009 joined\n[192.168.1.2:50002] after\n"
    );
}

#[test]
fn crlf_clients_are_accepted_the_cr_is_not_relayed_and_they_receive_crlf() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[1], b"before\n");
    room.receive(ids[0], b"from telnet\r\n\r\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] from telnet\n[192.168.1.1:50001] \n"
    );
    room.receive(ids[1], b"after\n/who\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "[192.168.1.2:50002] before\r\n[192.168.1.2:50002] after\r\n"
    );
    let who = take(&mut room, ids[1]);
    assert!(
        who.starts_with("-!- 2 present") && who.ends_with("50002\n"),
        "{who:?}"
    );
}

#[test]
fn a_long_line_is_relayed_in_pieces_of_max_line() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            max_line: 4,
            ..limits()
        },
    );
    room.receive(ids[0], b"abcdefghij\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] abcd\n[192.168.1.1:50001] efgh\n[192.168.1.1:50001] ij\n"
    );
}

#[test]
fn a_command_longer_than_max_line_is_dropped_with_a_reason() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            max_line: 8,
            ..limits()
        },
    );
    room.receive(ids[0], b"/msg 192.168.1.2:50002 secret\nafter\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- command longer than 8 bytes: line dropped\n"
    );
    assert_eq!(take(&mut room, ids[1]), "[192.168.1.1:50001] after\n");
}

#[test]
fn a_doubled_slash_relays_a_line_that_begins_with_a_slash() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"//etc/passwd is a file\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] /etc/passwd is a file\n"
    );
}

#[test]
fn nick_renames_and_tells_the_others() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"/nick alice  \n");
    assert_eq!(take(&mut room, ids[0]), "-!- you are now alice\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- 192.168.1.1:50001 is now alice\n"
    );
    assert_eq!(
        take_stdout(&mut room),
        "-!- 192.168.1.1:50001 is now alice\n"
    );
    room.receive(ids[0], b"hello\n");
    assert_eq!(
        take(&mut room, ids[2]),
        "-!- 192.168.1.1:50001 is now alice\n[alice] hello\n"
    );
    // Unique, ignoring ASCII case; but one may change the case of one's own.
    room.receive(ids[1], b"/nick ALICE\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[alice] hello\n-!- /nick: that name, or one that looks like it, is taken\n"
    );
    room.receive(ids[0], b"/NICK Alice\n/nick Alice\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- you are now Alice\n-!- you are already Alice\n"
    );
    // The old name is free again.
    room.receive(ids[1], b"/nick alice2\n");
    room.receive(ids[2], b"/nick Alice\n");
    assert_eq!(
        take(&mut room, ids[2]).lines().last(),
        Some("-!- /nick: that name, or one that looks like it, is taken")
    );
}

#[test]
fn nick_refusals_have_a_one_line_reason() {
    let (mut room, ids) = room_of(1, limits());
    let cases: &[(&[u8], &str)] = &[
        (b"/nick\n", "-!- /nick: usage: /nick NAME\n"),
        (
            b"/nick a b\n",
            "-!- /nick: a name has only visible characters, no spaces, brackets or colons\n",
        ),
        (
            b"/nick [x]\n",
            "-!- /nick: a name has only visible characters, no spaces, brackets or colons\n",
        ),
        (
            b"/nick 10.0.0.1:80\n",
            "-!- /nick: a name has only visible characters, no spaces, brackets or colons\n",
        ),
        (b"/nick chatd\n", "-!- /nick: chatd is the server's name\n"),
        (
            b"/nick abcdefghijabcdefghijabcdefghijabc\n",
            "-!- /nick: a name has at most 32 characters\n",
        ),
        (b"/nick \xff\n", "-!- /nick: a name must be valid UTF-8\n"),
    ];
    for (line, answer) in cases {
        room.receive(ids[0], line);
        assert_eq!(take(&mut room, ids[0]), *answer, "{line:?}");
    }
    assert_eq!(take_stdout(&mut room), "");
}

#[test]
fn names_that_look_alike_are_one_name() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/nick bob\n");
    take(&mut room, ids[0]);
    take(&mut room, ids[1]);
    // Cyrillic о, an invisible tag, NFD, fullwidth, upper case.
    for look_alike in [
        "b\u{043E}b",
        "bob\u{E0001}",
        "BOB",
        "\u{FF42}\u{FF4F}\u{FF42}",
        "B0B",
    ] {
        room.receive(ids[1], format!("/nick {look_alike}\n").as_bytes());
        let answer = take(&mut room, ids[1]);
        assert!(
            answer.starts_with("-!- /nick: ") && !answer.contains("you are now"),
            "{look_alike}: {answer}"
        );
    }
    room.receive(ids[0], "/nick jose\u{301}\n".as_bytes());
    room.receive(ids[1], "/nick jos\u{E9}\n".as_bytes());
    assert_eq!(
        take(&mut room, ids[1]).lines().last(),
        Some("-!- /nick: that name, or one that looks like it, is taken")
    );
    room.receive(ids[1], "/nick ch\u{0430}td\n".as_bytes());
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- /nick: chatd is the server's name\n"
    );
    // The look-alike keys are freed with the name.
    room.receive(ids[0], b"/nick carol\n");
    room.receive(ids[1], "/nick j\u{043E}s\u{E9}\n".as_bytes());
    assert!(take(&mut room, ids[1]).ends_with("-!- you are now j\u{043E}s\u{E9}\n"));
}

#[test]
fn who_lists_the_present_in_order_of_arrival() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[1], b"/nick bob\n");
    room.receive(ids[2], b"/who\n");
    assert_eq!(
        take(&mut room, ids[2]),
        "-!- 192.168.1.2:50002 is now bob\n-!- 3 present: 192.168.1.1:50001 bob 192.168.1.3:50003\n"
    );
}

#[test]
fn who_stays_one_line_of_at_most_max_line_bytes() {
    let (mut room, ids) = room_of(
        200,
        Limits {
            max_line: 300,
            ..limits()
        },
    );
    room.receive(ids[0], b"/who\n");
    let answer = take(&mut room, ids[0]);
    assert_eq!(answer.lines().count(), 1);
    assert!(answer.len() <= 300, "{answer}");
    assert!(
        answer.starts_with("-!- 200 present: 192.168.1.1:50001 "),
        "{answer}"
    );
    assert!(answer.ends_with(" more)\n"), "{answer}");
}

#[test]
fn me_is_an_action_seen_by_the_others() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/me waves\n/me\n");
    assert_eq!(take(&mut room, ids[1]), "* 192.168.1.1:50001 waves\n");
    assert_eq!(take(&mut room, ids[0]), "-!- usage: /me ACTION\n");
    assert_eq!(take_stdout(&mut room), "* 192.168.1.1:50001 waves\n");
}

#[test]
fn no_client_can_write_a_line_that_reads_as_a_notice() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"/nick the\n");
    room.receive(ids[1], b"/nick you\n");
    room.receive(ids[2], b"/nick alice\n");
    for &id in &ids {
        take(&mut room, id);
    }
    take_stdout(&mut room);
    room.receive(ids[0], b"/me room is closing\n-!- the room is closing\n");
    room.receive(ids[1], b"/me are now alice\n");
    room.close();
    let seen = take(&mut room, ids[2]);
    assert_eq!(
        seen,
        "* the room is closing\n[the] -!- the room is closing\n* you are now alice\n\
         -!- the room is closing\n"
    );
    // Only the room's own line begins with its mark.
    let notices: Vec<&str> = seen.lines().filter(|l| l.starts_with(NOTICE)).collect();
    assert_eq!(notices, ["-!- the room is closing"]);
}

#[test]
fn a_wrapped_row_never_begins_like_another_line_on_80_columns() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/nick eve\n");
    take(&mut room, ids[1]);
    let pad = " ".repeat(73);
    room.receive(
        ids[0],
        format!("x{pad}[bob] please send me your password\n").as_bytes(),
    );
    assert_eq!(
        take(&mut room, ids[1]),
        format!("[eve] x{pad} [bob] please send me your password\n")
    );
    room.receive(ids[0], format!("/me x{pad}-!- alice left\n").as_bytes());
    assert_eq!(
        take(&mut room, ids[1]),
        format!("* eve x{pad} -!- alice left\n")
    );
    // --raw relays the bytes as sent.
    let (mut room, ids) = room_of(
        2,
        Limits {
            clean: false,
            ..limits()
        },
    );
    room.receive(ids[0], format!("x{pad}[bob] hi\n").as_bytes());
    assert_eq!(
        take(&mut room, ids[1]),
        format!("[192.168.1.1:50001] x{pad}[bob] hi\n")
    );
}

#[test]
fn msg_is_private_and_marked() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[1], b"/nick bob\n");
    for &id in &ids {
        take(&mut room, id);
    }
    take_stdout(&mut room);
    room.receive(ids[0], b"/msg BOB  psst, bob\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001 (private)] psst, bob\n"
    );
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- to bob: psst, bob\n",
        "confirmed"
    );
    assert_eq!(take(&mut room, ids[2]), "", "private");
    assert_eq!(take_stdout(&mut room), "", "not shown to the room");
    room.receive(ids[0], b"/msg carol hi\n/msg bob\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- /msg: no one here is called carol\n-!- usage: /msg NAME TEXT\n"
    );
    // Address names work too, and chatd is the server's standard output.
    room.receive(ids[1], b"/msg 192.168.1.3:50003 hi\n/msg chatd teacher?\n");
    assert_eq!(take(&mut room, ids[2]), "[bob (private)] hi\n");
    assert_eq!(take_stdout(&mut room), "[bob (private)] teacher?\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- to 192.168.1.3:50003: hi\n-!- to chatd: teacher?\n"
    );
}

#[test]
fn help_and_unknown_commands_get_one_line() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/help\n/frobnicate now\n/\n");
    assert_eq!(
        take(&mut room, ids[0]),
        format!(
            "{HELP}\n-!- unknown command /frobnicate; /help lists the commands\n\
             -!- unknown command /; /help lists the commands\n"
        )
    );
    assert_eq!(take(&mut room, ids[1]), "", "commands are not relayed");
}

#[test]
fn bye_ends_the_client_and_is_announced_as_a_leave() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[1], b"hello\n");
    room.receive(ids[0], b"last words\nbye\r\nnot relayed\n");
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[0],
            flush: true
        }]
    );
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] last words\n-!- 192.168.1.1:50001 left\n"
    );
    // What was queued for it stays, to be written before the close (with
    // CRLF line ends: its own lines end so).
    assert_eq!(take(&mut room, ids[0]), "[192.168.1.2:50002] hello\r\n");
    room.receive(ids[0], b"ignored\n");
    room.receive(ids[2], b"still here\n");
    assert_eq!(take(&mut room, ids[0]), "", "out of the room");
    assert_eq!(room.members(), 2);
    assert_eq!(room.connections(), 3);
    room.release(ids[0]);
    assert_eq!(room.connections(), 2);
    // The slot is given again, and the name is free.
    let again = room.join(addr(1));
    assert_eq!(again, ids[0]);
    assert!(take(&mut room, again).starts_with("-!- you are 192.168.1.1:50001; here: 192.168.1."));
}

#[test]
fn end_of_file_relays_the_last_line_then_leaves() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"no newline");
    room.end_of_input(ids[0]);
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] no newline\n-!- 192.168.1.1:50001 left\n"
    );
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[0],
            flush: true
        }]
    );
}

#[test]
fn a_lost_connection_leaves_at_once() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[1], b"unread\n");
    room.lost(ids[0]);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[0],
            flush: false
        }]
    );
    assert_eq!(room.pending(ids[0]), 0);
    assert_eq!(take(&mut room, ids[1]), "-!- 192.168.1.1:50001 left\n");
}

#[test]
fn an_idle_client_leaves_as_idle_with_its_queue_still_sent() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[1], b"for you\n");
    room.idle(ids[0]);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[0],
            flush: true
        }]
    );
    assert_eq!(take(&mut room, ids[0]), "[192.168.1.2:50002] for you\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- 192.168.1.1:50001 left (idle)\n"
    );
    assert_eq!(room.members(), 1);
}

#[test]
fn arret_from_a_client_is_an_ordinary_line_by_default() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"arret\n");
    assert_eq!(take(&mut room, ids[1]), "[192.168.1.1:50001] arret\n");
    assert!(actions(&mut room).is_empty());
    assert!(!room.is_stopped());
}

#[test]
fn arret_from_a_client_stops_the_room_when_allowed() {
    let (mut room, ids) = room_of(
        3,
        Limits {
            allow_remote_stop: true,
            ..limits()
        },
    );
    room.receive(ids[2], b"/nick carol\narret\n");
    let notice = "-!- carol said arret: the room is closed\n";
    assert!(take(&mut room, ids[0]).ends_with(notice));
    assert_eq!(
        take(&mut room, ids[2]),
        format!("-!- you are now carol\n{notice}")
    );
    let all: Vec<Action> = ids
        .iter()
        .map(|&id| Action::Close { id, flush: true })
        .chain([Action::Stop])
        .collect();
    assert_eq!(actions(&mut room), all);
    assert!(room.is_stopped());
    assert_eq!(room.members(), 0);
}

#[test]
fn server_lines_go_to_every_client_and_arret_closes_the_room() {
    let (mut room, ids) = room_of(2, limits());
    room.from_server(b"welcome to the class\nar");
    for &id in &ids {
        assert_eq!(take(&mut room, id), "[chatd] welcome to the class\n");
    }
    assert_eq!(take_stdout(&mut room), "", "the server typed it: no echo");
    room.from_server(b"ret\nnever sent\n");
    for &id in &ids {
        assert_eq!(
            take(&mut room, id),
            "-!- chatd said arret: the room is closed\n"
        );
    }
    assert_eq!(
        take_stdout(&mut room),
        "-!- chatd said arret: the room is closed\n"
    );
    let mut expected: Vec<Action> = ids
        .iter()
        .map(|&id| Action::Close { id, flush: true })
        .collect();
    expected.push(Action::Stop);
    assert_eq!(actions(&mut room), expected);
    room.receive(ids[0], b"too late\n");
    assert_eq!(take(&mut room, ids[1]), "");
}

#[test]
fn the_server_last_line_counts_at_end_of_file_and_the_room_goes_on() {
    let (mut room, ids) = room_of(2, limits());
    room.from_server(b"bye for now");
    room.server_end_of_input();
    assert_eq!(take(&mut room, ids[0]), "[chatd] bye for now\n");
    room.receive(ids[0], b"still open\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[chatd] bye for now\n[192.168.1.1:50001] still open\n"
    );
}

// --- pacing and dropping (the rules of `pace`) -----------------------------

/// Writes at most `n` bytes of `id`'s queue at `now`, as a socket that
/// takes them would; returns them.
fn write(room: &mut Room, id: ClientId, n: usize, now: Instant) -> Vec<u8> {
    room.flush();
    let (queue, log) = room.outbox(id).expect("client has a slot");
    let head = log.head();
    let mut bytes = queue.contents(log);
    bytes.truncate(n);
    queue.advance(log, bytes.len());
    let full = !queue.is_empty(head);
    queue.note_write(head, bytes.len(), full, now);
    bytes
}

/// A line of `len` bytes numbered `k`, with its newline.
fn numbered(k: usize, len: usize) -> Vec<u8> {
    let mut line = format!("{k:06} ").into_bytes();
    line.resize(len - 1, b'.');
    line.push(b'\n');
    line
}

fn paced() -> Limits {
    Limits {
        max_queue: 100_000,
        ..limits()
    }
}

/// A room of `n` for the pacing tests: standard output is a file (never
/// pacing; [`tick`] empties it).
fn paced_room(n: u16) -> (Room, Vec<ClientId>) {
    let (mut room, ids) = room_of(n, paced());
    room.set_stdout(Stdout::Direct);
    (room, ids)
}

/// One turn of the event loop at `now`, as far as the room is concerned:
/// standard output written, the readers in `fast` written in full, those
/// in `stuck` tried (their socket takes nothing), then the check.
fn tick(room: &mut Room, fast: &[ClientId], stuck: &[ClientId], now: Instant) -> Pace {
    take_stdout(room);
    for &id in fast {
        if room.is_member(id) {
            write(room, id, usize::MAX, now);
        }
    }
    for &id in stuck {
        if room.is_member(id) {
            write(room, id, 0, now);
        }
    }
    room.check(now)
}

#[test]
fn a_reader_that_keeps_reading_pauses_the_talkers_and_is_never_dropped() {
    let (mut room, ids) = paced_room(3);
    let (talker, slow, fast) = (ids[0], ids[1], ids[2]);
    let marks = *room.marks();
    let mut now = Instant::now();
    let (mut sent, mut paused_at) = (0, None);
    let (mut got_slow, mut got_fast) = (Vec::new(), Vec::new());
    for step in 0..2000 {
        now += Duration::from_millis(10);
        let pace = tick(&mut room, &[], &[], now);
        assert!(actions(&mut room).is_empty(), "nobody is dropped");
        if pace.paused && paused_at.is_none() {
            paused_at = Some(room.backlog(slow));
        }
        if let Some(budget) = room.may_read(talker) {
            assert!(!pace.paused);
            // As many 100-byte lines as the budget allows.
            let mut bytes = Vec::new();
            while bytes.len() + 100 <= budget.max(100) && sent < 3000 {
                bytes.extend(numbered(sent, 100));
                sent += 1;
            }
            room.receive(talker, &bytes);
        } else if step % 10 == 0 {
            assert!(
                room.backlog(slow) > marks.low,
                "paused only for a reader behind"
            );
        }
        assert!(room.backlog(slow) <= marks.max_queue);
        got_fast.extend(write(&mut room, fast, usize::MAX, now));
        // The slow reader takes 1000 bytes every 10 ms: 100 kB/s.
        got_slow.extend(write(&mut room, slow, 1000, now));
        write(&mut room, talker, usize::MAX, now);
        if sent == 3000 && room.pending(slow) == 0 {
            break;
        }
    }
    assert_eq!(sent, 3000, "the talker was paced, not stopped");
    let paused_at = paused_at.expect("the room paused for the slow reader");
    assert!(
        paused_at >= marks.high && paused_at <= marks.max_queue,
        "{paused_at}"
    );
    let expected: Vec<u8> = (0..3000)
        .flat_map(|k| [b"[192.168.1.1:50001] ".to_vec(), numbered(k, 100)].concat())
        .collect();
    assert!(
        got_fast == expected,
        "the fast reader got every line in order"
    );
    assert!(
        got_slow == expected,
        "the slow reader got every line in order"
    );
}

/// The talker's reads, each as large as the room allows, until the room
/// pauses.
fn talk_until_paused(room: &mut Room, talker: ClientId) {
    while let Some(budget) = room.may_read(talker) {
        let bytes: Vec<u8> = (0..budget / 100).flat_map(|k| numbered(k, 100)).collect();
        room.receive(talker, &bytes);
    }
}

#[test]
fn a_pause_always_has_a_deadline_and_ends_in_the_check_after_the_readers_catch_up() {
    let (mut room, ids) = paced_room(2);
    let (talker, reader) = (ids[0], ids[1]);
    let marks = *room.marks();
    let now = Instant::now();
    // A paste the reader has not been written any of yet: its stall clock
    // has not started, and it still holds the pause, until a deadline.
    talk_until_paused(&mut room, talker);
    assert!(room.backlog(reader) >= marks.high);
    let pace = room.check(now);
    assert!(pace.paused);
    assert_eq!(
        pace.next,
        Some(now + marks.first_grace),
        "a pause with no deadline"
    );
    // The turn's writes take all of it: the check after them ends the pause.
    write(&mut room, reader, usize::MAX, now);
    write(&mut room, talker, usize::MAX, now);
    let pace = room.check(now);
    assert!(!pace.paused, "the reader caught up");
    assert!(room.may_read(talker).is_some());
}

#[test]
fn a_reader_whose_kernel_takes_bytes_is_never_judged_stopped() {
    // Its writes show no progress (its EPOLLOUT edges come late, or in
    // steps larger than a grace), but its socket's send queue goes down.
    let (mut room, ids) = paced_room(2);
    let (talker, reader) = (ids[0], ids[1]);
    let marks = *room.marks();
    let start = Instant::now();
    talk_until_paused(&mut room, talker);
    write(&mut room, reader, 1000, start);
    write(&mut room, reader, 0, start);
    write(&mut room, talker, usize::MAX, start);
    let mut asked = 0;
    let mut now = start;
    while now < start + 3 * marks.stall {
        now += Duration::from_millis(50);
        write(&mut room, reader, 0, now);
        let pace = room.check_with(now, &mut |who| {
            assert_eq!(who, Reader::Client(reader), "only the reader behind");
            asked += 1;
            true
        });
        assert!(pace.paused, "it still holds the room at {:?}", now - start);
        assert!(actions(&mut room).is_empty(), "nobody is dropped");
    }
    assert!(asked > 0 && asked <= 3 * marks.stall.as_millis() as usize / 300 + 1);
    // Once its kernel takes nothing more: stopped after a grace, dropped
    // at the stall timeout, each asked once.
    let stopped = now;
    asked = 0;
    while room.is_member(reader) {
        now += Duration::from_millis(50);
        write(&mut room, reader, 0, now);
        let pace = room.check_with(now, &mut |_| {
            asked += 1;
            false
        });
        if now - stopped >= marks.grace {
            assert!(!pace.paused, "a reader that stopped holds nothing");
        }
        assert!(now - stopped <= marks.stall + marks.grace, "never dropped");
    }
    assert_eq!(asked, 2, "when its grace ended, and at its stall timeout");
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: reader,
            flush: true
        }]
    );
}

#[test]
fn the_server_own_lines_ahead_of_its_stdout_never_pause_the_room() {
    // `yes | chatd --broker | cat`: what the server types is not shown on
    // its standard output, so nothing waits there for a reader to take.
    let (mut room, ids) = room_of(1, paced());
    let marks = *room.marks();
    let mut now = Instant::now();
    let mut typed = 0;
    while typed < 2 * marks.max_queue {
        now += Duration::from_millis(10);
        let budget = room.may_read_server().expect("standard input is read");
        let bytes: Vec<u8> = (0..budget / 100).flat_map(|k| numbered(k, 100)).collect();
        room.from_server(&bytes);
        typed += bytes.len();
        write(&mut room, ids[0], usize::MAX, now);
        let pace = room.check(now);
        assert!(!pace.paused, "paused for lines nobody has to read");
    }
    assert_eq!(take_stdout(&mut room), "");
}

#[test]
fn a_reader_that_stops_never_pauses_the_room_and_goes_after_the_stall_timeout() {
    let (mut room, ids) = paced_room(3);
    let (talker, stuck, reader) = (ids[0], ids[1], ids[2]);
    let marks = *room.marks();
    let start = Instant::now();
    let mut now = start;
    // It takes a few bytes, the middle of a line, then nothing.
    room.receive(talker, &numbered(0, 100));
    write(&mut room, stuck, 30, now);
    let mut k = 1;
    while now < start + marks.stall - Duration::from_millis(100) {
        now += Duration::from_millis(50);
        let pace = tick(&mut room, &[talker], &[stuck], now);
        if now >= start + marks.grace {
            assert!(!pace.paused, "a reader that stopped pauses nothing");
            assert!(room.may_read(talker).is_some());
        }
        // About 72 kB in all: above the high mark, below --max-queue.
        for _ in 0..3 {
            if k < 600 {
                room.receive(talker, &numbered(k, 100));
                k += 1;
            }
        }
        write(&mut room, reader, usize::MAX, now);
        assert!(actions(&mut room).is_empty(), "not yet");
    }
    assert!(room.pending(stuck) > marks.high);
    tick(&mut room, &[talker], &[stuck], start + marks.stall);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: stuck,
            flush: true
        }]
    );
    let name = "192.168.1.2:50002";
    assert_eq!(
        take(&mut room, reader),
        format!("-!- {name} left (too slow)\n"),
        "the others are told"
    );
    // It receives the rest of the line it was in, then why.
    let rest = String::from_utf8(numbered(0, 100)[10..].to_vec()).unwrap();
    assert_eq!(
        take(&mut room, stuck),
        format!("{rest}-!- {name} left (too slow)\n")
    );
    assert!(!room.is_member(stuck));
}

#[test]
fn a_reader_that_stops_is_dropped_as_soon_as_it_is_max_queue_behind() {
    let (mut room, ids) = paced_room(3);
    let (talker, stuck, reader) = (ids[0], ids[1], ids[2]);
    let start = Instant::now();
    room.receive(talker, &numbered(0, 100));
    write(&mut room, stuck, 0, start);
    let mut now = start + room.marks().grace;
    let mut k = 1;
    while room.backlog(stuck) <= 100_000 {
        assert!(room.may_read(talker).is_some());
        room.receive(talker, &numbered(k, 100));
        k += 1;
        write(&mut room, reader, usize::MAX, now);
        now += Duration::from_millis(1);
        if room.backlog(stuck) <= 100_000 {
            tick(&mut room, &[talker], &[stuck], now);
            assert!(actions(&mut room).is_empty());
        }
    }
    tick(&mut room, &[talker], &[stuck], now);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: stuck,
            flush: true
        }]
    );
    assert!(
        now < start + room.marks().stall,
        "well before the stall timeout"
    );
    // It holds the log no more: the room's memory is the others' backlog.
    tick(&mut room, &[talker, reader], &[], now);
    assert!(room.log().head() - room.log().tail() < super::super::log::SEGMENT as u64 * 2);
}

#[test]
fn a_talker_that_never_reads_holds_the_log_no_further_than_max_queue() {
    // Its own lines are not for it, but its cursor stays behind the one
    // line of another that it never took: its own lines count in how far
    // behind it is, so it is not read past the high mark, and its memory
    // is bounded.
    let (mut room, ids) = paced_room(2);
    let start = Instant::now();
    room.receive(ids[1], b"unread\n");
    write(&mut room, ids[0], 0, start);
    let mut k = 0;
    while let Some(budget) = room.may_read(ids[0]) {
        let lines = (budget / 100).max(1);
        let bytes: Vec<u8> = (0..lines)
            .flat_map(|_| {
                k += 1;
                numbered(k, 100)
            })
            .collect();
        room.receive(ids[0], &bytes);
        tick(&mut room, &[ids[1]], &[ids[0]], start);
        assert!(actions(&mut room).is_empty());
    }
    assert!(room.backlog(ids[0]) >= room.marks().high);
    assert!(room.backlog(ids[0]) <= room.marks().max_queue);
    assert!(room.log().head() - room.log().tail() <= room.marks().max_queue as u64 + 65536);
}

#[test]
fn the_log_holds_only_what_the_slowest_reader_still_needs() {
    let (mut room, ids) = paced_room(3);
    let now = Instant::now();
    let segment = super::super::log::SEGMENT;
    for k in 0..20_000 {
        room.receive(ids[k % 3], &numbered(k, 100));
        if k % 100 == 99 {
            tick(&mut room, &ids, &[], now);
            assert!(
                room.log().footprint() <= 2 * segment,
                "{}",
                room.log().footprint()
            );
        }
    }
    assert!(
        room.log().head() > 30 * segment as u64,
        "2.4 MB went through"
    );
    // A reader that stops holds it, up to --max-queue.
    write(&mut room, ids[2], 0, now);
    for k in 0..5_000 {
        room.receive(ids[0], &numbered(k, 100));
        tick(&mut room, &ids[..2], &ids[2..], now);
    }
    let held = room.log().head() - room.log().tail();
    assert!(
        held <= room.marks().max_queue as u64 + segment as u64,
        "{held}"
    );
}

#[test]
fn a_client_behind_on_its_own_answers_is_not_read_until_it_reads() {
    let (mut room, ids) = paced_room(2);
    assert!(room.may_read(ids[0]).is_some());
    while room.backlog(ids[0]) < room.marks().high {
        room.receive(ids[0], b"/help\n");
    }
    assert_eq!(room.may_read(ids[0]), None);
    assert!(room.may_read(ids[1]).is_some(), "the others are read");
    take(&mut room, ids[0]);
    assert!(room.may_read(ids[0]).is_some());
}

#[test]
fn the_server_stdout_that_stops_loses_lines_counted_and_the_room_goes_on() {
    let (mut room, ids) = room_of(2, paced());
    let start = Instant::now();
    room.receive(ids[0], &numbered(0, 100));
    {
        let (queue, log) = room.stdout_outbox();
        let head = log.head();
        queue.advance(log, 20);
        queue.note_write(head, 20, true, start);
    }
    let mut k = 1;
    let mut now = start;
    while now < start + room.marks().stall {
        now += Duration::from_millis(100);
        room.receive(ids[0], &numbered(k, 100));
        k += 1;
        take(&mut room, ids[1]);
        let pace = room.check(now);
        assert!(!pace.paused || now < start + room.marks().grace);
        assert!(room.may_read(ids[0]).is_some() || now < start + room.marks().grace);
    }
    // Dropped and counted at the stall timeout; the line begun is finished.
    assert_eq!(room.take_stdout_dropped(), k as u64 - 1);
    let rest = String::from_utf8(numbered(0, 100)[0..].to_vec()).unwrap();
    let shown = take_stdout(&mut room);
    assert_eq!(
        shown,
        format!("{}", &format!("[192.168.1.1:50001] {rest}")[20..])
    );
    assert!(actions(&mut room).is_empty(), "nobody leaves for it");
}

#[test]
fn a_leaver_that_falls_max_queue_behind_is_closed_at_once() {
    let (mut room, ids) = paced_room(3);
    room.receive(ids[0], &numbered(0, 100));
    room.receive(ids[1], b"bye\n");
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[1],
            flush: true
        }]
    );
    let mut k = 1;
    let now = Instant::now();
    while room.log().head() - room.queue(ids[1]).unwrap().cursor() <= 100_000 {
        room.receive(ids[0], &numbered(k, 100));
        k += 1;
        take(&mut room, ids[2]);
    }
    tick(&mut room, &[ids[0], ids[2]], &[], now);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[1],
            flush: false
        }]
    );
}

#[test]
fn the_greeting_lists_who_is_present_up_to_a_limit() {
    let (mut room, _) = room_of(40, limits());
    let late = room.join(addr(41));
    let greeting = take(&mut room, late);
    let here = greeting
        .strip_prefix(
            "-!- you are 192.168.1.41:50041; here: 192.168.1.1:50001, 192.168.1.2:50002, ",
        )
        .unwrap_or_else(|| panic!("{greeting}"));
    let (listed, rest) = here.split_once(" and ").expect("and N more");
    let shown = listed.split(", ").count() + 2;
    assert_eq!(
        rest,
        format!("{} more; /help lists the commands\n", 40 - shown)
    );
    assert!(greeting.len() < 300, "{greeting}");
}

#[test]
fn a_newcomer_gets_the_last_lines_marked_as_history_before_its_greeting() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            history: 3,
            ..limits()
        },
    );
    room.receive(ids[0], b"one\ntwo\n/me waves\n");
    room.receive(ids[1], b"three\n");
    take(&mut room, ids[0]);
    take(&mut room, ids[1]);
    take_stdout(&mut room);
    let late = room.join(addr(3));
    assert_eq!(
        take(&mut room, late),
        "-!- history: the last 3 lines said here\n\
         [192.168.1.1:50001] two\n\
         * 192.168.1.1:50001 waves\n\
         [192.168.1.2:50002] three\n\
         -!- end of history\n\
         -!- you are 192.168.1.3:50003; here: 192.168.1.1:50001, 192.168.1.2:50002; \
         /help lists the commands\n"
    );
    // The others get the join notice only, and then the room goes on.
    assert_eq!(take(&mut room, ids[0]), "-!- 192.168.1.3:50003 joined\n");
    room.receive(ids[0], b"four\n");
    assert_eq!(take(&mut room, late), "[192.168.1.1:50001] four\n");
    // Every reader passed the lines: the history is still there.
    let later = room.join(addr(4));
    let seen = take(&mut room, later);
    assert!(
        seen.starts_with(
            "-!- history: the last 3 lines said here\n[192.168.1.2:50002] three\n\
             -!- 192.168.1.3:50003 joined\n[192.168.1.1:50001] four\n-!- end of history\n"
        ),
        "{seen}"
    );
    // Without --history, nothing.
    let (mut room, ids) = room_of(1, limits());
    room.receive(ids[0], b"said\n");
    let late = room.join(addr(2));
    assert!(take(&mut room, late).starts_with("-!- you are "));
}

#[test]
fn history_stays_within_a_quarter_of_max_queue() {
    let max_queue = 20_000;
    let (mut room, ids) = room_of(
        1,
        Limits {
            history: 1000,
            max_queue,
            ..limits()
        },
    );
    for k in 0..100 {
        room.receive(ids[0], &numbered(k, 500));
        take(&mut room, ids[0]);
        room.check(Instant::now());
    }
    let late = room.join(addr(2));
    let seen = take(&mut room, late);
    assert!(seen.len() <= max_queue / 4 + 200, "{} bytes", seen.len());
    let lines = seen.lines().count();
    assert!(lines > 5, "{lines} lines");
    let last = String::from_utf8(numbered(99, 500)).unwrap();
    assert!(seen.contains(&last), "{seen}");
}

#[test]
fn clients_joining_in_one_turn_are_announced_in_one_notice() {
    let (mut room, ids) = room_of(1, limits());
    let newcomers: Vec<ClientId> = (2..=4).map(|i| room.join(addr(i))).collect();
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- 3 joined: 192.168.1.2:50002, 192.168.1.3:50003, 192.168.1.4:50004\n"
    );
    // Each newcomer is greeted, listing the others, of its turn too.
    assert_eq!(
        take(&mut room, newcomers[0]),
        "-!- you are 192.168.1.2:50002; here: 192.168.1.1:50001, 192.168.1.3:50003, \
         192.168.1.4:50004; /help lists the commands\n"
    );
    let crowd: Vec<ClientId> = (10..100).map(|i| room.join(addr(i))).collect();
    let notice = take(&mut room, ids[0]);
    assert!(
        notice.starts_with("-!- 90 joined: 192.168.1.10:50010, "),
        "{notice}"
    );
    assert!(
        notice.ends_with(" more)\n") && notice.len() < 300,
        "{notice}"
    );
    let greeting = take(&mut room, crowd[89]);
    let (listed, more) = greeting.split_once(" and ").expect("and N more");
    let more: usize = more.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(listed.matches(", ").count() + 1 + more, 93, "{greeting}");
    assert_eq!(take_stdout(&mut room).lines().count(), 2);
}

#[test]
fn a_terminating_signal_closes_the_room_with_a_notice_to_everyone() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[1], b"unread\n");
    room.close();
    let mut expected: Vec<Action> = ids
        .iter()
        .map(|&id| Action::Close { id, flush: true })
        .collect();
    expected.push(Action::Stop);
    assert_eq!(actions(&mut room), expected);
    assert_eq!(
        take(&mut room, ids[0]),
        "[192.168.1.2:50002] unread\n-!- the room is closing\n"
    );
    assert_eq!(take(&mut room, ids[1]), "-!- the room is closing\n");
    assert!(take_stdout(&mut room).ends_with("-!- the room is closing\n"));
}

// --- cleaning: nothing relayed can drive a terminal -------------------------

#[test]
fn what_would_drive_a_terminal_is_shown_visibly_to_everyone() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(
        ids[0],
        b"\x1b[2J\x1b]0;pwned\x07 \xe2\x80\xaetxet caf\xc3\xa9 \x9b\xff\tok\n",
    );
    let shown = "^[[2J^[]0;pwned^G <U+202E>txet café \\x9b\\xff\tok";
    assert_eq!(
        take(&mut room, ids[1]),
        format!("[192.168.1.1:50001] {shown}\n")
    );
    assert_eq!(
        take_stdout(&mut room),
        format!("[192.168.1.1:50001] {shown}\n")
    );
    room.receive(
        ids[0],
        b"/me \x1b[31mwaves\n/msg 192.168.1.2:50002 \x07hi\n/x\x1b[H\n",
    );
    room.from_server(b"\x1b[5mteacher\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "* 192.168.1.1:50001 ^[[31mwaves\n[192.168.1.1:50001 (private)] ^Ghi\n[chatd] ^[[5mteacher\n"
    );
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- to 192.168.1.2:50002: ^Ghi\n-!- unknown command /x^[[H; /help lists the commands\n\
         [chatd] ^[[5mteacher\n"
    );
}

#[test]
fn raw_relays_bytes_unchanged() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            clean: false,
            ..limits()
        },
    );
    let line = b"\x1b[2J\x9b\xff\r\x00end";
    room.receive(ids[0], &[&line[..], b"\n"].concat());
    let got = take_bytes(&mut room, ids[1]);
    assert_eq!(got, [&b"[192.168.1.1:50001] "[..], line, b"\n"].concat());
}

#[test]
fn utf8_stays_whole_across_the_pieces_of_a_long_line() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            max_line: 5,
            ..limits()
        },
    );
    // "ab" then é (2 bytes) cut by the 5-byte pieces: abé|é... stays whole.
    room.receive(ids[0], "abcdéfgh\n".as_bytes());
    let got = take(&mut room, ids[1]);
    let text: String = got.lines().map(|l| &l[20..]).collect();
    assert_eq!(text, "abcdéfgh", "{got:?}");
    assert!(!got.contains("\\x"), "{got:?}");
}
#[test]
fn ipv6_clients_are_named_with_a_dot_before_the_port() {
    let mut room = Room::new(limits());
    let a = room.join(addr(1));
    take(&mut room, a);
    room.join("[2001:db8::7]:51234".parse().unwrap());
    assert_eq!(
        take(&mut room, a).lines().last(),
        Some("-!- 2001:db8::7.51234 joined")
    );
}

// --- properties ------------------------------------------------------------

/// The lines of `stream` as the framing rule cuts them, before end of
/// file: every complete line, and the pieces of the unfinished last line
/// already known to be followed by more of it.
fn model_lines(stream: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    let mut out = Vec::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.push(Vec::new());
        }
        out.extend(line.chunks(max).map(<[u8]>::to_vec));
    }
    // A piece is handed on once the 4 bytes after it are known (they say
    // whether a character goes on past it; here, ASCII, it never does).
    let pieces = last.len().saturating_sub(4) / max;
    out.extend(last.chunks(max).take(pieces).map(<[u8]>::to_vec));
    out
}

/// The relayed lines in `received`, by sender name (notices left out);
/// `crlf` if the receiver gets CRLF line ends.
fn by_sender(received: &[u8], crlf: bool) -> HashMap<String, Vec<Vec<u8>>> {
    let mut out: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut lines: Vec<&[u8]> = received.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.pop(),
        Some(&b""[..]),
        "every queued line ends in a newline"
    );
    for mut line in lines {
        if crlf {
            line = line.strip_suffix(b"\r").expect("a CRLF line end");
        }
        if line.starts_with(b"-!- ") || line.starts_with(b"* ") {
            continue;
        }
        let end = line.windows(2).position(|w| w == b"] ").expect("a prefix");
        let name = String::from_utf8(line[1..end].to_vec()).unwrap();
        out.entry(name).or_default().push(line[end + 2..].to_vec());
    }
    out
}

/// Text without commands or words: letters, spaces, CRs and newlines.
fn chat_stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(b'x'), Just(b'y'), Just(b' '), Just(b'\r'), Just(b'\n')],
        0..120,
    )
}

proptest! {
    /// However the clients' streams are cut into reads and interleaved,
    /// every client receives each other client's lines exactly once, whole,
    /// in the order they were sent, and never its own.
    #[test]
    fn every_line_reaches_every_other_client_once_in_order(
        streams in proptest::collection::vec(chat_stream(), 2..5),
        schedule in proptest::collection::vec((any::<prop::sample::Index>(), 1usize..30), 0..60),
        max_line in 1usize..10,
    ) {
        // Raw: the bytes as sent (cleaning is tested on its own).
        let limits = Limits { max_line, clean: false, ..limits() };
        let (mut room, ids) = room_of(streams.len() as u16, limits);
        let mut sent = vec![0usize; streams.len()];
        let mut received = vec![Vec::new(); streams.len()];
        let mut feed = |room: &mut Room, who: usize, len: usize| {
            let start = sent[who];
            let end = (start + len).min(streams[who].len());
            room.receive(ids[who], &streams[who][start..end]);
            sent[who] = end;
        };
        for (who, len) in &schedule {
            feed(&mut room, who.index(streams.len()), *len);
        }
        for who in 0..streams.len() {
            feed(&mut room, who, usize::MAX / 2);
        }
        room.flush();
        for (i, &id) in ids.iter().enumerate() {
            received[i] = contents(&mut room, id);
        }
        for (r, got) in received.iter().enumerate() {
            let crlf = room.queue(ids[r]).unwrap().crlf();
            let got = by_sender(got, crlf);
            for (s, stream) in streams.iter().enumerate() {
                let name = room.name(ids[s]).unwrap().to_owned();
                let lines = got.get(&name).cloned().unwrap_or_default();
                if r == s {
                    prop_assert!(lines.is_empty(), "echo to the sender");
                } else {
                    prop_assert_eq!(lines, model_lines(stream, max_line));
                }
            }
        }
        prop_assert!(actions(&mut room).is_empty());
    }

    /// With readers that keep reading at random paces, a talker that talks
    /// whenever the room lets it, and one reader that stops: no reader
    /// that keeps reading is ever dropped or more than --max-queue behind,
    /// and it receives every line in order; the room never waits for the
    /// one that stopped, which is dropped by the stall timeout or
    /// --max-queue, whichever comes first.
    #[test]
    fn readers_that_read_get_everything_and_only_the_one_that_stops_goes(
        paces in proptest::collection::vec(1usize..3000, 3),
        ops in proptest::collection::vec((1u64..200, 1usize..40), 50..400),
        stop_after in 0usize..5000,
    ) {
        let limits = Limits { max_line: 64, max_queue: 20_000, ..limits() };
        let (mut room, ids) = room_of(5, limits);
        let marks = *room.marks();
        let (talker, readers, stopper) = (ids[0], &ids[1..4], ids[4]);
        let mut now = Instant::now();
        let mut said: Vec<Vec<u8>> = Vec::new();
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); 3];
        let mut stopper_got = 0;
        let mut dropped_at = None;
        for (dt, lines) in ops {
            now += Duration::from_millis(dt);
            // The stopper goes exactly when the rules say.
            let due = room.is_member(stopper) && {
                let q = room.queue(stopper).unwrap();
                let pending = room.pending(stopper);
                room.backlog(stopper) > marks.max_queue
                    || (pending > 0 && q.waiting_since().is_some_and(|t| now - t >= marks.stall))
            };
            let pace = room.check(now);
            let went = actions(&mut room);
            if due {
                prop_assert_eq!(went, vec![Action::Close { id: stopper, flush: true }]);
                dropped_at = Some(now);
            } else {
                prop_assert!(went.is_empty(), "{:?}", went);
            }
            if pace.paused {
                let behind = readers.iter().map(|&r| room.backlog(r)).max().unwrap_or(0);
                prop_assert!(behind > marks.low || room.stdout_pending() > marks.low);
            }
            if let Some(budget) = room.may_read(talker) {
                let mut bytes = Vec::new();
                for _ in 0..lines {
                    let line = numbered(said.len(), 40);
                    if bytes.len() + line.len() > budget {
                        break;
                    }
                    said.push(line[..39].to_vec());
                    bytes.extend(line);
                }
                room.receive(talker, &bytes);
            }
            for (i, &r) in readers.iter().enumerate() {
                got[i].extend(write(&mut room, r, paces[i], now));
                prop_assert!(room.backlog(r) <= marks.max_queue);
            }
            if room.is_member(stopper) {
                let n = stop_after.saturating_sub(stopper_got).min(1000);
                stopper_got += write(&mut room, stopper, n, now).len();
            } else {
                prop_assert!(dropped_at.is_some());
            }
            take(&mut room, talker);
            take_stdout(&mut room);
        }
        // Drain what is left, then compare.
        for (i, &r) in readers.iter().enumerate() {
            got[i].extend(take_bytes(&mut room, r));
            let lines: Vec<&[u8]> = got[i]
                .split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"[192.168.1.1:50001] "))
                .map(|l| &l[20..])
                .collect();
            prop_assert_eq!(lines.len(), said.len());
            for (a, b) in lines.iter().zip(&said) {
                prop_assert_eq!(a, &&b[..]);
            }
        }
        // It went only once it had stopped.
        prop_assert!(dropped_at.is_none() || stopper_got >= stop_after);
    }
}

// --- the operator at the line editor ---------------------------------------

/// A room of `n` clients whose operator, named `name`, types at the line
/// editor (commands on).
fn operated(n: u16, name: &str) -> (Room, Vec<ClientId>) {
    let (mut room, ids) = room_of(n, limits());
    room.set_operator(name, true);
    (room, ids)
}

#[test]
fn the_operators_lines_carry_its_name_and_a_slash_line_is_a_command() {
    let (mut room, ids) = operated(2, "teacher");
    room.from_operator(b"good morning");
    room.from_operator(b"/who");
    room.from_operator(b"//who is here?");
    for &id in &ids {
        assert_eq!(
            take(&mut room, id),
            "[teacher] good morning\n[teacher] /who is here?\n"
        );
    }
    // The answer is the operator's alone; its own lines are on its screen
    // already (the editor printed them).
    assert_eq!(
        take_stdout(&mut room),
        "-!- 2 present: 192.168.1.1:50001 192.168.1.2:50002\n"
    );
    room.from_operator(b"/help");
    room.from_operator(b"/frobnicate now");
    assert_eq!(
        take_stdout(&mut room),
        format!("{OPERATOR_HELP}\n-!- unknown command /frobnicate; /help lists the commands\n")
    );
    assert!(take(&mut room, ids[0]).is_empty());
}

#[test]
fn without_the_editor_a_slash_line_is_relayed_as_before() {
    let (mut room, ids) = room_of(1, limits());
    room.from_operator(b"/who");
    room.from_server(b"/kick 192.168.1.1:50001\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "[chatd] /who\n[chatd] /kick 192.168.1.1:50001\n"
    );
    assert!(take_stdout(&mut room).is_empty());
    assert!(actions(&mut room).is_empty());
}

#[test]
fn the_operator_sends_private_lines_and_is_found_by_its_name() {
    let (mut room, ids) = operated(2, "teacher");
    room.from_operator(b"/msg 192.168.1.1:50001 see me after class");
    assert_eq!(
        take(&mut room, ids[0]),
        "[teacher (private)] see me after class\n"
    );
    assert!(take(&mut room, ids[1]).is_empty());
    assert_eq!(
        take_stdout(&mut room),
        "-!- to 192.168.1.1:50001: see me after class\n"
    );
    room.from_operator(b"/msg nobody hello");
    room.from_operator(b"/msg");
    assert_eq!(
        take_stdout(&mut room),
        "-!- /msg: no one here is called nobody\n-!- usage: /msg NAME TEXT\n"
    );
    // A client writes to the operator by its name, not by `chatd`.
    room.receive(ids[1], b"/msg Teacher a question\n/msg chatd hello?\n");
    assert_eq!(
        take_stdout(&mut room),
        "[192.168.1.2:50002 (private)] a question\n"
    );
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- to teacher: a question\n-!- /msg: no one here is called chatd\n"
    );
}

#[test]
fn no_client_may_take_the_operators_name_nor_one_like_it() {
    let (mut room, ids) = operated(1, "teacher");
    room.receive(
        ids[0],
        b"/nick Teacher\n/nick te\xd0\xb0cher\n/nick student\n",
    );
    assert_eq!(
        take(&mut room, ids[0]),
        "-!- /nick: that name, or one that looks like it, is taken\n\
         -!- /nick: that name, or one that looks like it, is taken\n\
         -!- you are now student\n"
    );
}

#[test]
fn kick_tells_the_client_why_lets_it_go_and_tells_the_others() {
    let (mut room, ids) = operated(2, "chatd");
    room.receive(ids[1], b"before the kick\n");
    room.from_operator(b"/kick 192.168.1.2:50002 please stay polite");
    assert_eq!(
        take(&mut room, ids[1]),
        "-!- you were kicked by chatd (please stay polite)\n"
    );
    assert_eq!(
        take(&mut room, ids[0]),
        "[192.168.1.2:50002] before the kick\n\
         -!- 192.168.1.2:50002 was kicked by chatd (please stay polite)\n"
    );
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[1],
            flush: true
        }]
    );
    assert_eq!(room.members(), 1);
    room.from_operator(b"/kick 192.168.1.2:50002");
    room.from_operator(b"/kick");
    let out = take_stdout(&mut room);
    assert!(
        out.ends_with(
            "-!- /kick: no one here is called 192.168.1.2:50002\n\
             -!- usage: /kick NAME [REASON]\n"
        ),
        "{out}"
    );
    // Without a reason.
    room.from_operator(b"/kick 192.168.1.1:50001");
    assert_eq!(take(&mut room, ids[0]), "-!- you were kicked by chatd\n");
}

#[test]
fn me_and_quit_from_the_operator() {
    let (mut room, ids) = operated(1, "teacher");
    room.from_operator(b"/me waves");
    assert_eq!(take(&mut room, ids[0]), "* teacher waves\n");
    assert!(take_stdout(&mut room).is_empty());
    room.from_operator(b"/quit");
    assert_eq!(take(&mut room, ids[0]), "-!- teacher closed the room\n");
    assert_eq!(take_stdout(&mut room), "-!- teacher closed the room\n");
    assert!(room.is_stopped());
    assert_eq!(
        actions(&mut room),
        [
            Action::Close {
                id: ids[0],
                flush: true
            },
            Action::Stop
        ]
    );
    // Nothing more once the room is closed.
    room.from_operator(b"still there?");
    assert!(take(&mut room, ids[0]).is_empty());
}

// --- names bound to certificates (`--tls`) -----------------------------

fn cert(byte: u8) -> Fingerprint {
    Fingerprint([byte; 32])
}

fn tls_room() -> Room {
    let mut room = Room::new(limits());
    room.set_reservations(Reservations::new(name::Keys::list));
    room
}

#[test]
fn a_name_taken_with_a_certificate_is_reserved_for_it() {
    let mut room = tls_room();
    let alice = room.join(addr(1));
    room.set_certificate(alice, cert(1));
    let mallory = room.join(addr(2));
    room.set_certificate(mallory, cert(2));
    let anon = room.join(addr(3));
    take(&mut room, alice);
    take(&mut room, mallory);
    take(&mut room, anon);
    room.receive(alice, b"/nick alice\n");
    assert!(take(&mut room, alice).contains("-!- you are now alice"));
    let saved = room.take_reservations().expect("a reservation was made");
    assert_eq!(saved.holder("alice"), Some(cert(1)));
    assert!(room.take_reservations().is_none());
    // alice leaves; her name stays hers.
    room.receive(alice, b"bye\n");
    take(&mut room, mallory);
    take(&mut room, anon);
    for (id, who) in [(mallory, "another certificate"), (anon, "no certificate")] {
        room.receive(id, b"/nick Alice\n");
        assert_eq!(
            take(&mut room, id),
            "-!- /nick: Alice is reserved for another certificate\n",
            "{who}"
        );
    }
    // A name nobody reserved: the client without a certificate may take
    // it, and it stays free for anyone after it.
    room.receive(anon, b"/nick bob\n");
    assert!(take(&mut room, anon).contains("-!- you are now bob"));
    assert!(room.take_reservations().is_none());
}

#[test]
fn a_name_that_looks_like_a_reserved_one_is_refused() {
    let mut room = tls_room();
    let alice = room.join(addr(1));
    room.set_certificate(alice, cert(1));
    room.receive(alice, b"/nick alice\n");
    assert!(take(&mut room, alice).contains("-!- you are now alice"));
    assert!(room.take_reservations().is_some());
    // alice leaves: her name, and every name that looks like it, stay
    // hers.
    room.receive(alice, b"bye\n");
    let mallory = room.join(addr(2));
    room.set_certificate(mallory, cert(2));
    let anon = room.join(addr(3));
    take(&mut room, mallory);
    take(&mut room, anon);
    let alike = [
        "\u{0430}lice",        // Cyrillic а
        "al\u{0456}ce",        // Cyrillic і
        "a1ice",               // digit one
        "AL\u{0406}CE",        // Cyrillic І, in capitals
        "\u{FF41}l\u{0456}ce", // fullwidth a, Cyrillic і
    ];
    for name in alike {
        for (id, who) in [(mallory, "another certificate"), (anon, "no certificate")] {
            room.receive(id, format!("/nick {name}\n").as_bytes());
            assert_eq!(
                take(&mut room, id),
                format!("-!- /nick: {name} is reserved for another certificate\n"),
                "{name} by {who}"
            );
        }
    }
    assert!(room.take_reservations().is_none());
    // Her own certificate may take a look-alike of her name: the
    // reservation moves to it, and still covers the first spelling.
    let back = room.join(addr(4));
    room.set_certificate(back, cert(1));
    assert!(take(&mut room, back).starts_with("-!- you are alice;"));
    room.receive(back, "/nick \u{0430}lice\n".as_bytes());
    assert!(take(&mut room, back).contains("-!- you are now \u{0430}lice"));
    let saved = room.take_reservations().expect("the reservation moved");
    assert_eq!(saved.name_of(&cert(1)), Some("\u{0430}lice"));
    room.receive(back, b"bye\n");
    take(&mut room, mallory);
    room.receive(mallory, b"/nick alice\n");
    assert_eq!(
        take(&mut room, mallory),
        "-!- /nick: alice is reserved for another certificate\n"
    );
    // A name that looks like no reserved one is free.
    room.receive(mallory, b"/nick mallory\n");
    assert!(take(&mut room, mallory).contains("-!- you are now mallory"));
}

#[test]
fn a_certificate_gets_its_name_back_when_it_joins() {
    let mut reservations = Reservations::new(name::Keys::list);
    reservations.claim("alice", &cert(1));
    let mut room = Room::new(limits());
    room.set_reservations(reservations);
    let bob = room.join(addr(2));
    take(&mut room, bob);
    let alice = room.join(addr(1));
    room.set_certificate(alice, cert(1));
    assert!(take(&mut room, alice).starts_with("-!- you are alice; here: 192.168.1.2:50002"));
    assert_eq!(take(&mut room, bob), "-!- alice joined\n");
    room.receive(bob, b"/who\n");
    assert_eq!(
        take(&mut room, bob),
        "-!- 2 present: 192.168.1.2:50002 alice (verified)\n"
    );
    // Another certificate's member is not verified under an address name.
    let carol = room.join(addr(3));
    room.set_certificate(carol, cert(3));
    take(&mut room, carol);
    room.receive(carol, b"/who\n");
    assert!(take(&mut room, carol).ends_with(" alice (verified) 192.168.1.3:50003\n"));
}
