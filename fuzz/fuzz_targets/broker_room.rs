//! The room (`chatd::broker::room::Room`), a state machine without
//! sockets: a script of operations read from the input (clients join,
//! send bytes, commands and names, take part of their queue or nothing,
//! reach end of file, lose their connection; the server's stdin speaks;
//! time passes and the room is checked; a signal closes it) must never
//! panic; after every check no member is more than `--max-queue` behind
//! (the pacing and dropping rules), and a client that reads everything at
//! every turn is never dropped.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chatd::broker::room::{Action, ClientId, Limits, Room};
use libfuzzer_sys::fuzz_target;

const MAX_QUEUE: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 64,
        max_queue: MAX_QUEUE,
        allow_remote_stop: data.first().is_some_and(|b| b & 1 == 1),
        clean: data.first().is_some_and(|b| b & 2 == 2),
        stall_timeout: Duration::from_millis(800),
        history: if data.first().is_some_and(|b| b & 4 == 4) { 3 } else { 0 },
    };
    let mut room = Room::new(limits);
    let mut ids: Vec<ClientId> = Vec::new();
    let mut actions = Vec::new();
    let mut ready = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    let mut port = 40000u16;
    let mut now = Instant::now();
    // The first client reads everything at every turn: it is never dropped.
    let mut keen: Option<ClientId> = None;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let who = ids.get(usize::from(op >> 3) % ids.len().max(1)).copied();
        match op & 7 {
            0 if ids.len() < 16 => {
                port = port.wrapping_add(1);
                let id = room.join(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
                keen.get_or_insert(id);
                ids.push(id);
            }
            1 | 2 | 3 => {
                // Bytes: a length, then that many bytes of the input.
                let Some((&len, tail)) = rest.split_first() else { break };
                let take = usize::from(len % 48).min(tail.len());
                let (bytes, tail) = tail.split_at(take);
                rest = tail;
                match who {
                    Some(id) if op & 7 != 3 => {
                        if room.may_read(id).is_some() {
                            room.receive(id, bytes);
                        }
                    }
                    _ => {
                        if room.may_read_server().is_some() {
                            room.from_server(bytes);
                        }
                    }
                }
            }
            4 => {
                // A client takes part of its queue (maybe nothing).
                if let Some(id) = who
                    && let Some((queue, log)) = room.outbox(id)
                {
                    let head = log.head();
                    let half = queue.pending(head) / 2;
                    queue.advance(log, half);
                    queue.note_write(head, half, true, now);
                }
            }
            5 => {
                if let Some(id) = who {
                    room.end_of_input(id);
                }
            }
            6 => {
                if let Some(id) = who {
                    room.lost(id);
                }
            }
            _ => match op >> 3 {
                0 => room.server_end_of_input(),
                1 => room.close(),
                n => now += Duration::from_millis(u64::from(n) * 10),
            },
        }
        room.flush();
        if let Some(id) = keen
            && let Some((queue, log)) = room.outbox(id)
        {
            let head = log.head();
            let all = queue.pending(head);
            queue.advance(log, all);
            queue.note_write(head, all, false, now);
        }
        let keen_name = keen.and_then(|id| room.name(id).map(str::to_owned));
        room.check(now);
        {
            // What the room shows: never the keen reader dropped.
            let (queue, log) = room.stdout_outbox();
            let head = log.head();
            let shown = queue.contents(log);
            queue.advance(log, shown.len());
            queue.note_write(head, shown.len(), false, now);
            if let Some(name) = &keen_name {
                let notice = format!("-!- {name} left (too slow)\n");
                assert!(
                    !shown.windows(notice.len()).any(|w| w == notice.as_bytes()),
                    "a client that reads everything was dropped"
                );
            }
        }
        let _ = room.take_ready(&mut ready);
        ready.clear();
        room.take_actions(&mut actions);
        for action in actions.drain(..) {
            if let Action::Close { id, .. } = action {
                if Some(id) == keen {
                    keen = None;
                }
                room.release(id);
                ids.retain(|&i| i != id);
            }
        }
        for &id in &ids {
            if room.is_member(id) {
                assert!(room.backlog(id) <= MAX_QUEUE, "{} bytes behind", room.backlog(id));
            }
        }
        if room.is_stopped() {
            break;
        }
    }
});
