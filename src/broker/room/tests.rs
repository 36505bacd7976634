//! The room driven directly, without sockets: what each client's send
//! queue and the server's standard output hold after each event.

use super::*;
use proptest::prelude::*;

fn limits() -> Limits {
    Limits {
        max_line: 1000,
        max_queue: 100_000,
        allow_remote_stop: false,
        sanitize_stdout: false,
    }
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([192, 168, 1, i as u8], 50000 + i))
}

/// Everything queued for `id` since the last call, as text; the queue is
/// then empty (as if the event loop had written it).
fn take(room: &mut Room, id: ClientId) -> String {
    room.flush();
    let queue = room.queue_mut(id).expect("client has a slot");
    let bytes = queue.contents();
    queue.advance(bytes.len());
    String::from_utf8(bytes).unwrap()
}

fn take_stdout(room: &mut Room) -> String {
    room.flush();
    let queue = room.stdout_mut();
    let bytes = queue.contents();
    queue.advance(bytes.len());
    String::from_utf8_lossy(&bytes).into_owned()
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
        "* you are 192.168.1.1:50001, with 0 others here; /help lists the commands\n"
    );
    let b = room.join(addr(2));
    assert_eq!(take(&mut room, a), "* 192.168.1.2:50002 joined\n");
    assert_eq!(
        take(&mut room, b),
        "* you are 192.168.1.2:50002, with 1 other here; /help lists the commands\n"
    );
    assert_eq!(
        take_stdout(&mut room),
        "* 192.168.1.1:50001 joined\n* 192.168.1.2:50002 joined\n"
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
fn a_relayed_line_is_one_allocation_shared_by_every_queue() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"shared\n");
    room.flush();
    let mut iov = [std::io::IoSlice::new(&[]); 1];
    let b = room.queue(ids[1]).unwrap();
    b.io_slices(&mut iov, usize::MAX);
    let in_b = iov[0].as_ptr();
    let c = room.queue(ids[2]).unwrap();
    c.io_slices(&mut iov, usize::MAX);
    assert_eq!(in_b, iov[0].as_ptr(), "same bytes, not a copy");
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
fn the_lines_of_one_read_leave_as_one_chunk_in_order_with_what_they_cause() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"one\ntwo\n/me waves\nthree\n/nick a\nfour\n");
    room.flush();
    let c = room.queue(ids[2]).unwrap();
    let mut iov = [std::io::IoSlice::new(&[]); 8];
    // [one, two], the action, [three], the rename, [four]
    assert_eq!(c.io_slices(&mut iov, usize::MAX), 5);
    assert_eq!(
        take(&mut room, ids[2]),
        "[192.168.1.1:50001] one\n[192.168.1.1:50001] two\n* 192.168.1.1:50001 waves\n\
         [192.168.1.1:50001] three\n* 192.168.1.1:50001 is now a\n[a] four\n"
    );
    assert_eq!(take(&mut room, ids[0]), "* you are now a\n");
}

/// How many queue slots (shared chunks or ranges of one) `id` holds.
fn slots(room: &Room, id: ClientId) -> usize {
    let mut iov = [std::io::IoSlice::new(&[]); 64];
    room.queue(id).unwrap().io_slices(&mut iov, usize::MAX)
}

#[test]
fn the_lines_of_a_turn_are_one_chunk_and_each_client_gets_it_around_its_own_lines() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[0], b"a1\n");
    room.receive(ids[1], b"b1\n");
    room.from_server(b"s1\n");
    room.receive(ids[0], b"a2\n");
    room.flush();
    let (a, b) = ("[192.168.1.1:50001]", "[192.168.1.2:50002]");
    // Said nothing: the whole chunk, one slot.
    assert_eq!(slots(&room, ids[2]), 1);
    assert_eq!(
        take(&mut room, ids[2]),
        format!("{a} a1\n{b} b1\n[chatd] s1\n{a} a2\n")
    );
    // The range between its two lines.
    assert_eq!(slots(&room, ids[0]), 1);
    assert_eq!(take(&mut room, ids[0]), format!("{b} b1\n[chatd] s1\n"));
    // The ranges before and after its line.
    assert_eq!(slots(&room, ids[1]), 2);
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
        "* 192.168.1.9:50009 joined\n[192.168.1.2:50002] after\n"
    );
}

#[test]
fn crlf_clients_are_accepted_and_the_cr_is_not_relayed() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"from telnet\r\n\r\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] from telnet\n[192.168.1.1:50001] \n"
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
        "* command longer than 8 bytes: line dropped\n"
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
    assert_eq!(take(&mut room, ids[0]), "* you are now alice\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "* 192.168.1.1:50001 is now alice\n"
    );
    assert_eq!(take_stdout(&mut room), "* 192.168.1.1:50001 is now alice\n");
    room.receive(ids[0], b"hello\n");
    assert_eq!(
        take(&mut room, ids[2]),
        "* 192.168.1.1:50001 is now alice\n[alice] hello\n"
    );
    // Unique, ignoring ASCII case; but one may change the case of one's own.
    room.receive(ids[1], b"/nick ALICE\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[alice] hello\n* /nick: that name is taken\n"
    );
    room.receive(ids[0], b"/NICK Alice\n/nick Alice\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "* you are now Alice\n* you are already Alice\n"
    );
    // The old name is free again.
    room.receive(ids[1], b"/nick alice2\n");
    room.receive(ids[2], b"/nick Alice\n");
    assert_eq!(
        take(&mut room, ids[2]).lines().last(),
        Some("* /nick: that name is taken")
    );
}

#[test]
fn nick_refusals_have_a_one_line_reason() {
    let (mut room, ids) = room_of(1, limits());
    let cases: &[(&[u8], &str)] = &[
        (b"/nick\n", "* /nick: usage: /nick NAME\n"),
        (
            b"/nick a b\n",
            "* /nick: a name has no spaces, brackets, colons, control or invisible characters\n",
        ),
        (
            b"/nick [x]\n",
            "* /nick: a name has no spaces, brackets, colons, control or invisible characters\n",
        ),
        (
            b"/nick 10.0.0.1:80\n",
            "* /nick: a name has no spaces, brackets, colons, control or invisible characters\n",
        ),
        (b"/nick chatd\n", "* /nick: chatd is the server's name\n"),
        (
            b"/nick abcdefghijabcdefghijabcdefghijabc\n",
            "* /nick: a name has at most 32 characters\n",
        ),
        (b"/nick \xff\n", "* /nick: a name must be valid UTF-8\n"),
    ];
    for (line, answer) in cases {
        room.receive(ids[0], line);
        assert_eq!(take(&mut room, ids[0]), *answer, "{line:?}");
    }
    assert_eq!(take_stdout(&mut room), "");
}

#[test]
fn who_lists_the_present_in_order_of_arrival() {
    let (mut room, ids) = room_of(3, limits());
    room.receive(ids[1], b"/nick bob\n");
    room.receive(ids[2], b"/who\n");
    assert_eq!(
        take(&mut room, ids[2]),
        "* 192.168.1.2:50002 is now bob\n* 3 present: 192.168.1.1:50001 bob 192.168.1.3:50003\n"
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
        answer.starts_with("* 200 present: 192.168.1.1:50001 "),
        "{answer}"
    );
    assert!(answer.ends_with(" more)\n"), "{answer}");
}

#[test]
fn me_is_an_action_seen_by_the_others() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/me waves\n/me\n");
    assert_eq!(take(&mut room, ids[1]), "* 192.168.1.1:50001 waves\n");
    assert_eq!(take(&mut room, ids[0]), "* usage: /me ACTION\n");
    assert_eq!(take_stdout(&mut room), "* 192.168.1.1:50001 waves\n");
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
    assert_eq!(take(&mut room, ids[0]), "", "no echo");
    assert_eq!(take(&mut room, ids[2]), "", "private");
    assert_eq!(take_stdout(&mut room), "", "not shown to the room");
    room.receive(ids[0], b"/msg carol hi\n/msg bob\n");
    assert_eq!(
        take(&mut room, ids[0]),
        "* /msg: no one here is called carol\n* usage: /msg NAME TEXT\n"
    );
    // Address names work too, and chatd is the server's standard output.
    room.receive(ids[1], b"/msg 192.168.1.3:50003 hi\n/msg chatd teacher?\n");
    assert_eq!(take(&mut room, ids[2]), "[bob (private)] hi\n");
    assert_eq!(take_stdout(&mut room), "[bob (private)] teacher?\n");
}

#[test]
fn help_and_unknown_commands_get_one_line() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"/help\n/frobnicate now\n/\n");
    assert_eq!(
        take(&mut room, ids[0]),
        format!(
            "{HELP}\n* unknown command /frobnicate; /help lists the commands\n\
             * unknown command /; /help lists the commands\n"
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
        "[192.168.1.1:50001] last words\n* 192.168.1.1:50001 left\n"
    );
    // What was queued for it stays, to be written before the close.
    assert_eq!(take(&mut room, ids[0]), "[192.168.1.2:50002] hello\n");
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
    assert!(take(&mut room, again).starts_with("* you are 192.168.1.1:50001, with 2 others"));
}

#[test]
fn end_of_file_relays_the_last_line_then_leaves() {
    let (mut room, ids) = room_of(2, limits());
    room.receive(ids[0], b"no newline");
    room.end_of_input(ids[0]);
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] no newline\n* 192.168.1.1:50001 left\n"
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
    assert!(room.queue(ids[0]).unwrap().is_empty());
    assert_eq!(take(&mut room, ids[1]), "* 192.168.1.1:50001 left\n");
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
    assert_eq!(take(&mut room, ids[1]), "* 192.168.1.1:50001 left (idle)\n");
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
    let notice = "* carol said arret: the room is closed\n";
    assert!(take(&mut room, ids[0]).ends_with(notice));
    assert_eq!(
        take(&mut room, ids[2]),
        format!("* you are now carol\n{notice}")
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
            "* chatd said arret: the room is closed\n"
        );
    }
    assert_eq!(
        take_stdout(&mut room),
        "* chatd said arret: the room is closed\n"
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

#[test]
fn a_client_that_does_not_read_is_disconnected_too_slow_and_nobody_waits() {
    let (mut room, ids) = room_of(
        3,
        Limits {
            max_queue: 200,
            ..limits()
        },
    );
    // ids[2] never reads; ids[1] reads everything.
    let line = b"0123456789012345678\n"; // 40 bytes with the prefix
    for _ in 0..5 {
        room.receive(ids[0], line);
        assert_eq!(take(&mut room, ids[1]).len(), 40);
    }
    assert_eq!(room.queue(ids[2]).unwrap().len(), 200);
    assert!(actions(&mut room).is_empty());
    room.receive(ids[0], line);
    assert_eq!(
        actions(&mut room),
        [Action::Close {
            id: ids[2],
            flush: false
        }]
    );
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] 0123456789012345678\n* 192.168.1.3:50003 left (too slow)\n"
    );
    assert!(room.queue(ids[2]).unwrap().is_empty(), "its queue is freed");
    assert!(!room.is_member(ids[2]));
}

#[test]
fn the_server_stdout_drops_and_counts_what_it_cannot_hold() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            max_queue: 200,
            ..limits()
        },
    );
    for _ in 0..8 {
        room.receive(ids[0], b"0123456789012345678\n");
        take(&mut room, ids[1]);
    }
    assert_eq!(room.stdout_mut().len(), 200);
    assert_eq!(room.take_stdout_dropped(), 3);
    assert_eq!(room.take_stdout_dropped(), 0);
}

#[test]
fn terminal_bytes_are_cleaned_on_the_server_terminal_only() {
    let (mut room, ids) = room_of(
        2,
        Limits {
            sanitize_stdout: true,
            ..limits()
        },
    );
    room.receive(ids[0], b"\x1b]0;pwned\x07hi\n");
    assert_eq!(
        take(&mut room, ids[1]),
        "[192.168.1.1:50001] \x1b]0;pwned\x07hi\n"
    );
    assert_eq!(
        take_stdout(&mut room),
        "[192.168.1.1:50001] ^[]0;pwned^Ghi\n"
    );
}

#[test]
fn ipv6_clients_are_named_with_a_dot_before_the_port() {
    let mut room = Room::new(limits());
    let a = room.join(addr(1));
    room.join("[2001:db8::7]:51234".parse().unwrap());
    assert_eq!(
        take(&mut room, a).lines().last(),
        Some("* 2001:db8::7.51234 joined")
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
    // A trailing \r may be the first half of a CRLF: undecided.
    let known = last.len() - usize::from(last.ends_with(b"\r"));
    let pieces = known.saturating_sub(1) / max;
    out.extend(last.chunks(max).take(pieces).map(<[u8]>::to_vec));
    out
}

/// The relayed lines in `received`, by sender name (notices left out).
fn by_sender(received: &[u8]) -> HashMap<String, Vec<Vec<u8>>> {
    let mut out: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut lines: Vec<&[u8]> = received.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.pop(),
        Some(&b""[..]),
        "every queued line ends in a newline"
    );
    for line in lines {
        if line.starts_with(b"* ") {
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
        let limits = Limits { max_line, ..limits() };
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
            received[i] = room.queue(id).unwrap().contents();
        }
        for (r, got) in received.iter().enumerate() {
            let got = by_sender(got);
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

    /// With clients that read at random paces: no queue ever holds more
    /// than --max-queue bytes; a client is disconnected exactly when a line
    /// does not fit; and what a client received from each sender is a
    /// prefix of what that sender said (never a line missing in between).
    #[test]
    fn queues_stay_bounded_and_a_slow_client_misses_nothing_before_it_goes(
        ops in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<bool>(), 0usize..200, 1usize..40),
            1..120,
        ),
        max_queue in 300usize..600,
    ) {
        let limits = Limits { max_line: 16, max_queue, ..limits() };
        let (mut room, ids) = room_of(4, limits);
        let mut said: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ids.len()];
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); ids.len()];
        let mut closed = vec![false; ids.len()];
        for (who, speak, n, len) in ops {
            let who = who.index(ids.len());
            if closed[who] {
                continue;
            }
            if speak {
                let line = vec![b'a' + (said[who].len() % 26) as u8; len.min(16)];
                said[who].push(line.clone());
                let mut bytes = line;
                bytes.push(b'\n');
                room.receive(ids[who], &bytes);
            } else {
                let queue = room.queue_mut(ids[who]).unwrap();
                let n = n.min(queue.len());
                got[who].extend_from_slice(&queue.contents()[..n]);
                queue.advance(n);
            }
            for action in actions(&mut room) {
                match action {
                    Action::Close { id, flush } => {
                        prop_assert!(!flush, "only too-slow leaves here");
                        closed[id.index()] = true;
                    }
                    Action::Stop => prop_assert!(false, "no arret here"),
                }
            }
            for &id in &ids {
                prop_assert!(room.queue(id).unwrap().len() <= max_queue);
            }
        }
        for (r, bytes) in got.iter().enumerate() {
            // Cut at the last complete line received.
            let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let from = by_sender(&bytes[..end]);
            for (s, lines) in said.iter().enumerate() {
                let name = room.name(ids[s]).unwrap().to_owned();
                let heard = from.get(&name).cloned().unwrap_or_default();
                if r == s {
                    prop_assert!(heard.is_empty());
                } else {
                    // A disconnected speaker said nothing after it left,
                    // and a listener hears a prefix of the rest.
                    prop_assert!(heard.len() <= lines.len());
                    prop_assert_eq!(&heard[..], &lines[..heard.len()]);
                }
            }
        }
    }
}
