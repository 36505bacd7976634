//! The room's pacing and dropping decisions, as plain functions of a
//! reader's backlog and of time (no sockets, no clock of their own), so
//! that they are tested directly.
//!
//! # The rule
//!
//! - A reader is **moving** when nothing waits for it, or when it made
//!   room in its socket (read something) less than [`GRACE`] ago. A reader
//!   whose socket filled and that has not made room since gets
//!   [`FIRST_GRACE`] only: a reader that reads makes room within a few
//!   milliseconds, one that stopped never does, and should not hold the
//!   room for half a second first.
//! - Room is made when a write of the room's takes bytes after the socket
//!   filled, or when the reader's kernel acknowledges bytes of the
//!   socket's send queue (`SIOCOUTQ` goes down; for a pipe, `FIONREAD`).
//!   The second is asked once a reader's grace runs out, before it is
//!   judged stopped ([`should_ask`]): wall time alone would judge stopped
//!   a reader whose kernel still takes bytes, such as a reader starved of
//!   the CPU for half a second on a loaded machine, or one whose progress
//!   the room, itself not scheduled, had not yet seen as an `EPOLLOUT`
//!   edge. A reader whose kernel takes bytes is never stopped.
//! - While a moving reader has more than the **high-water mark** queued
//!   (half of `--max-queue`), the room stops reading from the clients'
//!   sockets and from its own standard input: the talkers' `chat` processes
//!   meet TCP backpressure and their unsent input waits in their standard
//!   input. Reading resumes once every moving reader has at most the
//!   **low-water mark** (a quarter of `--max-queue`). This is the fast
//!   producer stall of NATS (which stalls a producer while a consumer's
//!   buffer is more than half full), held until the reader drains instead
//!   of for a few milliseconds.
//! - A reader that is not moving never pauses the room. It is **dropped**
//!   (`-!- NAME left (too slow)`) when it has accepted no byte for
//!   `--stall-timeout` while lines waited for it (NATS's write deadline), or
//!   as soon as its backlog passes `--max-queue` (NATS's `max_pending`,
//!   Redis's hard limit, IRC's SendQ).
//! - Each read from a talker is small enough that what it can add to any
//!   queue ([`read_budget`]) stays within `--max-queue` minus the
//!   high-water mark: checked before every read, the pause therefore comes
//!   before any moving reader can reach `--max-queue`.
//!
//! # The figures
//!
//! | figure | value | why |
//! |---|---|---|
//! | `--max-queue` | 1 MiB | IRC's largest SendQ; with the shared log it bounds the room's memory too (see [`super`]) |
//! | high-water mark | `--max-queue` / 2 (512 KiB) | NATS stalls producers at half of `max_pending` |
//! | low-water mark | `--max-queue` / 4 (256 KiB) | far enough below the high mark that the room does not switch on and off for every line |
//! | [`GRACE`] | 500 ms | on loopback a reader's progress comes in steps of one 64 KiB segment: 500 ms covers readers down to 128 KiB/s; on a LAN (1448-byte segments) down to about 3 KB/s |
//! | [`FIRST_GRACE`] | 300 ms | the first room a reader makes after its socket filled: a reader's loop is back within it even on a loaded machine (200 readers in one process beside two busy CPUs: 100 ms dropped some that were reading, 300 ms none; the runs are in docs/PERFORMANCE.md); a reader that stopped holds the room for this, and for a [`GRACE`] more each time its kernel still takes bytes after the fill (it acknowledges what was in flight, then shrinks its receive queue: about 1 s in all on loopback, measured in docs/PERFORMANCE.md) |
//! | `--stall-timeout` | 10 s | NATS's `write_deadline`; a person who pressed Ctrl-S for a moment is not dropped |

use std::time::{Duration, Instant};

/// How long a reader with lines waiting may accept nothing and still count
/// as moving (see the [module documentation](self)): 500 ms.
pub const GRACE: Duration = Duration::from_millis(500);

/// How long a reader whose socket filled may take to make room for the
/// first time and still count as moving: 300 ms.
pub const FIRST_GRACE: Duration = Duration::from_millis(300);

/// The marks of a room, from `--max-queue` and `--stall-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// `--max-queue`: a backlog above this many bytes drops its reader.
    pub max_queue: usize,
    /// A moving reader above this many bytes pauses the room.
    pub high: usize,
    /// The room resumes once every moving reader is at or below this.
    pub low: usize,
    /// A reader that accepted nothing for this long with lines waiting is
    /// no longer moving.
    pub grace: Duration,
    /// The same, for a reader that has not made room in its socket since
    /// it filled.
    pub first_grace: Duration,
    /// `--stall-timeout`: a reader that accepted nothing for this long with
    /// lines waiting is dropped.
    pub stall: Duration,
}

impl Marks {
    /// The marks for `--max-queue max_queue` and `--stall-timeout stall`:
    /// high = half, low = a quarter, grace = [`GRACE`] and
    /// [`FIRST_GRACE`] (at most half the stall timeout).
    pub fn new(max_queue: usize, stall: Duration) -> Marks {
        Marks {
            max_queue,
            high: max_queue / 2,
            low: max_queue / 4,
            grace: GRACE.min(stall / 2),
            first_grace: FIRST_GRACE.min(stall / 2),
            stall,
        }
    }
}

/// Whether a reader counts as moving at `now`: nothing waits for it
/// (`waiting_since` is `None`), or it accepted a byte (or lines began to
/// wait) less than the grace ago: [`Marks::grace`] if it `drained` (made
/// room in its socket after it filled), [`Marks::first_grace`] otherwise.
pub fn moving(waiting_since: Option<Instant>, drained: bool, now: Instant, marks: &Marks) -> bool {
    let grace = if drained {
        marks.grace
    } else {
        marks.first_grace
    };
    waiting_since.is_none_or(|since| now.saturating_duration_since(since) < grace)
}

/// Whether a reader holds the room's pause by its backlog, and until when
/// at the latest: `None` if it does not (nothing `pending` for it, only
/// its own lines ahead of its cursor, which the next write skips; or it is
/// not [`moving`]); otherwise the end of its grace, unless it makes room
/// first. (Only a reader more than the low-water mark behind can keep a
/// pause: the caller needs that deadline only then.)
///
/// A reader that has lines pending and no stall clock yet (the loop has not
/// tried to write to it since they came) is waiting from `now`. So a pause
/// always has a deadline: the event loop never sleeps without one while it
/// holds a talker back (the rule of [`super`]'s loop).
pub fn holds(
    pending: usize,
    waiting_since: Option<Instant>,
    drained: bool,
    now: Instant,
    marks: &Marks,
) -> Option<Instant> {
    if pending == 0 {
        return None;
    }
    let since = waiting_since.unwrap_or(now);
    if !moving(Some(since), drained, now, marks) {
        return None;
    }
    let grace = if drained {
        marks.grace
    } else {
        marks.first_grace
    };
    Some(since + grace)
}

/// Whether the room should ask a reader's kernel whether it took bytes
/// since the room last looked (see the [module documentation](self)): the
/// reader has had lines waiting since `since`, and either its
/// `--stall-timeout` has come, or its grace is over while it is more than
/// the low-water mark behind (so that whether it is moving decides the
/// pause) and it was not `asked` already since it last made room. A
/// reader that stopped is asked twice at most: when its grace ends and
/// when its stall timeout does.
pub fn should_ask(
    since: Instant,
    backlog: usize,
    drained: bool,
    asked: bool,
    now: Instant,
    marks: &Marks,
) -> bool {
    if now.saturating_duration_since(since) >= marks.stall {
        return true;
    }
    !asked && backlog > marks.low && !moving(Some(since), drained, now, marks)
}

/// What becomes of a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It stays.
    Keep,
    /// Its backlog passed `--max-queue`.
    Overflow,
    /// It accepted nothing for `--stall-timeout` while lines waited.
    Stalled,
}

/// The verdict for a reader with `pending` bytes queued, waiting without
/// progress since `waiting_since`, at `now`.
pub fn judge(
    pending: usize,
    waiting_since: Option<Instant>,
    now: Instant,
    marks: &Marks,
) -> Verdict {
    if pending > marks.max_queue {
        return Verdict::Overflow;
    }
    match waiting_since {
        Some(since) if pending > 0 && now.saturating_duration_since(since) >= marks.stall => {
            Verdict::Stalled
        }
        _ => Verdict::Keep,
    }
}

/// The room's pause, with hysteresis between the marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacer {
    paused: bool,
}

impl Pacer {
    /// Whether the room is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Updates the pause from the largest backlog of a moving reader:
    /// paused from the high-water mark on, until at or below the low one.
    /// Returns whether the room is paused.
    pub fn update(&mut self, largest_moving: usize, marks: &Marks) -> bool {
        self.paused = if self.paused {
            largest_moving > marks.low
        } else {
            largest_moving >= marks.high
        };
        self.paused
    }

    /// Pauses at once (a read took a reader to the high-water mark).
    pub fn pause(&mut self) {
        self.paused = true;
    }
}

/// The most bytes to read from a talker at once: what the read can add to
/// any reader's queue stays within `--max-queue` minus the high-water
/// mark. A byte read becomes at most `expansion` bytes queued (its line's
/// prefix, cleaning, a notice it causes), and the `held` bytes of an
/// unfinished line may be completed by the read (up to 4 bytes each once
/// cleaned). At least 1.
pub fn read_budget(marks: &Marks, expansion: usize, held: usize, overhead: usize) -> usize {
    let room = marks.max_queue - marks.high;
    let room = room.saturating_sub(held.saturating_mul(4).saturating_add(overhead));
    (room / expansion.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The default `--stall-timeout`: 10 s.
    const DEFAULT_STALL: Duration = Duration::from_secs(10);

    fn marks() -> Marks {
        Marks::new(1 << 20, DEFAULT_STALL)
    }

    #[test]
    fn the_marks_are_half_and_a_quarter() {
        let m = marks();
        assert_eq!((m.high, m.low), (512 << 10, 256 << 10));
        assert_eq!(m.grace, GRACE);
        assert_eq!(
            Marks::new(1000, Duration::from_millis(600)).grace,
            Duration::from_millis(300)
        );
    }

    #[test]
    fn a_reader_moves_while_it_takes_bytes_within_the_grace() {
        let m = marks();
        let t = Instant::now();
        assert!(moving(None, false, t + Duration::from_secs(100), &m));
        assert!(moving(
            Some(t),
            true,
            t + GRACE - Duration::from_millis(1),
            &m
        ));
        assert!(!moving(Some(t), true, t + GRACE, &m));
        // One that never made room since its socket filled: a short grace.
        assert!(moving(
            Some(t),
            false,
            t + FIRST_GRACE - Duration::from_millis(1),
            &m
        ));
        assert!(!moving(Some(t), false, t + FIRST_GRACE, &m));
    }

    #[test]
    fn only_a_moving_reader_with_lines_waiting_holds_a_pause_and_until_its_grace_ends() {
        let m = marks();
        let t = Instant::now();
        // Nothing pending (its own lines only): no pause, however far.
        assert_eq!(holds(0, None, false, t, &m), None);
        assert_eq!(holds(0, Some(t), true, t, &m), None);
        // Lines pending and no clock yet: waiting from now.
        assert_eq!(holds(1, None, false, t, &m), Some(t + FIRST_GRACE));
        // A reader that made room: until its grace ends.
        let ms = Duration::from_millis(100);
        assert_eq!(holds(1, Some(t), true, t + ms, &m), Some(t + GRACE));
        // Its grace is over: it is not moving and holds nothing.
        assert_eq!(holds(1, Some(t), true, t + GRACE, &m), None);
        assert_eq!(holds(1, Some(t), false, t + FIRST_GRACE, &m), None);
    }

    #[test]
    fn a_reader_kernel_is_asked_when_its_grace_ends_while_it_is_behind_and_at_its_stall() {
        let m = marks();
        let t = Instant::now();
        let behind = m.low + 1;
        let ms = Duration::from_millis(1);
        // Within its grace: time says it moves.
        assert!(!should_ask(t, behind, true, false, t + GRACE - ms, &m));
        assert!(!should_ask(
            t,
            behind,
            false,
            false,
            t + FIRST_GRACE - ms,
            &m
        ));
        // Its grace is over: asked once.
        assert!(should_ask(t, behind, true, false, t + GRACE, &m));
        assert!(should_ask(t, behind, false, false, t + FIRST_GRACE, &m));
        assert!(!should_ask(t, behind, true, true, t + GRACE, &m), "asked");
        // Within the low mark, it decides no pause: not asked.
        assert!(!should_ask(t, m.low, true, false, t + GRACE, &m));
        // At its stall timeout, always.
        assert!(should_ask(t, 1, true, true, t + m.stall, &m));
    }

    #[test]
    fn a_reader_is_dropped_past_max_queue_or_after_the_stall_timeout() {
        let m = marks();
        let t = Instant::now();
        assert_eq!(judge(m.max_queue, Some(t), t, &m), Verdict::Keep);
        assert_eq!(judge(m.max_queue + 1, None, t, &m), Verdict::Overflow);
        let later = t + m.stall;
        assert_eq!(
            judge(10, Some(t), later - Duration::from_millis(1), &m),
            Verdict::Keep
        );
        assert_eq!(judge(10, Some(t), later, &m), Verdict::Stalled);
        assert_eq!(judge(0, Some(t), later, &m), Verdict::Keep, "nothing waits");
    }

    #[test]
    fn the_pause_has_hysteresis() {
        let m = marks();
        let mut p = Pacer::default();
        assert!(!p.update(m.high - 1, &m));
        assert!(p.update(m.high, &m));
        assert!(p.update(m.low + 1, &m), "still above the low mark");
        assert!(!p.update(m.low, &m));
        assert!(!p.update(m.high - 1, &m));
    }

    #[test]
    fn a_read_cannot_take_a_reader_from_below_high_to_past_max_queue() {
        let m = marks();
        let b = read_budget(&m, 25, 0, 512);
        assert!(b * 25 + 512 <= m.max_queue - m.high);
        assert!(b >= 16 * 1024, "{b}: reads stay large for ordinary names");
        assert_eq!(
            read_budget(&Marks::new(1000, DEFAULT_STALL), 25, 400, 512),
            1
        );
    }

    proptest! {
        /// Whatever the backlogs, a paused room resumes only at or below
        /// the low mark and pauses only at or above the high mark.
        #[test]
        fn pauses_follow_the_marks(backlogs in proptest::collection::vec(0usize..(2 << 20), 1..50)) {
            let m = marks();
            let mut p = Pacer::default();
            for b in backlogs {
                let was = p.paused();
                let now = p.update(b, &m);
                if !was && now { prop_assert!(b >= m.high); }
                if was && !now { prop_assert!(b <= m.low); }
                if !was && !now { prop_assert!(b < m.high); }
                if was && now { prop_assert!(b > m.low); }
            }
        }

        /// A reader that takes a byte at least every half grace is never
        /// dropped for a stall, however long it stays behind; one that
        /// stops is dropped exactly once the stall timeout has passed.
        #[test]
        fn only_a_reader_that_stops_is_dropped_for_a_stall(
            steps in proptest::collection::vec(1u64..250, 1..100),
            pending in 1usize..(1 << 20),
        ) {
            let m = marks();
            let start = Instant::now();
            let mut t = start;
            for step in steps {
                t += Duration::from_millis(step);
                // It took a byte at t - step, less than half the grace ago.
                let since = t - Duration::from_millis(step);
                prop_assert!(moving(Some(since), true, t, &m));
                prop_assert_eq!(judge(pending, Some(since), t, &m), Verdict::Keep);
            }
            prop_assert_eq!(judge(pending, Some(t), t + m.stall, &m), Verdict::Stalled);
            prop_assert!(!moving(Some(t), true, t + m.grace, &m));
        }
    }
}
