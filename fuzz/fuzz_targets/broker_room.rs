//! The room (`chatd::broker::room::Room`), a state machine without
//! sockets: a script of operations read from the input (clients join,
//! send bytes, commands and names, read part of their queue, reach end of
//! file, lose their connection, leave; the server's stdin speaks) must
//! never panic, and every queue stays within `--max-queue`.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use chatd::broker::room::{Action, ClientId, Limits, Room};
use libfuzzer_sys::fuzz_target;

const MAX_QUEUE: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 64,
        max_queue: MAX_QUEUE,
        allow_remote_stop: data.first().is_some_and(|b| b & 1 == 1),
        sanitize_stdout: data.first().is_some_and(|b| b & 2 == 2),
    };
    let mut room = Room::new(limits);
    let mut ids: Vec<ClientId> = Vec::new();
    let mut actions = Vec::new();
    let mut ready = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    let mut port = 40000u16;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let who = ids.get(usize::from(op >> 3) % ids.len().max(1)).copied();
        match op & 7 {
            0 if ids.len() < 16 => {
                port = port.wrapping_add(1);
                ids.push(room.join(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
            }
            1 | 2 | 3 => {
                // Bytes: a length, then that many bytes of the input.
                let Some((&len, tail)) = rest.split_first() else { break };
                let take = usize::from(len % 48).min(tail.len());
                let (bytes, tail) = tail.split_at(take);
                rest = tail;
                match who {
                    Some(id) if op & 7 != 3 => room.receive(id, bytes),
                    _ => room.from_server(bytes),
                }
            }
            4 => {
                if let Some(id) = who
                    && let Some(queue) = room.queue_mut(id)
                {
                    let half = queue.len() / 2;
                    queue.advance(half);
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
            _ => room.server_end_of_input(),
        }
        room.flush();
        room.take_ready(&mut ready);
        ready.clear();
        room.take_actions(&mut actions);
        for action in actions.drain(..) {
            if let Action::Close { id, .. } = action {
                room.release(id);
                ids.retain(|&i| i != id);
            }
        }
        for &id in &ids {
            if let Some(queue) = room.queue(id) {
                assert!(queue.len() <= MAX_QUEUE, "queue of {} bytes", queue.len());
            }
        }
        if room.is_stopped() {
            break;
        }
    }
});
