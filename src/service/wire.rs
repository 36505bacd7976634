//! The wire format of `chatd --sum`, decoded without any socket.
//!
//! The format is the one of the Java course's `SimpleClient` and
//! `MultithreadedClients`, which write with `java.io.DataOutputStream` and
//! read with `java.io.DataInputStream`:
//!
//! 1. the client's **greeting**, its own address as text, written by
//!    `writeUTF`: a 2-byte big-endian length *L* (in bytes, 0 to 65535),
//!    then *L* bytes of Java's *modified UTF-8* ([`decode_modified_utf8`]);
//!    the course sends `socket.getLocalAddress().getHostAddress()`, such as
//!    `127.0.0.1`;
//! 2. then any number of **pairs**, each two 32-bit big-endian two's
//!    complement integers (`writeInt`), 8 bytes a pair;
//! 3. the server answers each pair with the sum as one 32-bit big-endian
//!    integer (read by `readInt`), wrapping on overflow exactly as Java's
//!    `int` addition does ([`i32::wrapping_add`]): `2147483647 + 1` is
//!    `-2147483648`.
//!
//! [`SumDecoder`] takes the client's bytes in chunks of any size, as
//! `read(2)` returns them, and yields the greeting and the pairs; however
//! the stream is split, it yields the same items (the property tests below
//! check it). It keeps at most one pair and one greeting of
//! [`MAX_GREETING`] bytes between chunks.

use std::fmt;

/// Longest greeting accepted, in bytes of modified UTF-8 (the length field
/// says more: [`WireError::GreetingTooLong`]). The greeting is an address;
/// the longest DNS name, 253 bytes, fits.
pub(crate) const MAX_GREETING: usize = 255;

/// Bytes of one request: two 32-bit integers.
pub(crate) const PAIR_LEN: usize = 8;

/// Bytes of the greeting's length field (`writeUTF`'s `unsigned short`).
const LENGTH_LEN: usize = 2;

/// One thing a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The greeting, decoded (always the first item, exactly once).
    Greeting(String),
    /// A request: two integers to add.
    Pair(i32, i32),
}

/// Why a client's stream is not a well-formed `--sum` conversation. Each
/// ends that client's connection (the server goes on). The message of a
/// greeting too long says what the service expects, since it is what a
/// text client (`nc`, `chat`) gets: `hello` reads as a length of 26725.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The greeting's length field announces `len` bytes, more than
    /// [`MAX_GREETING`].
    GreetingTooLong {
        /// The announced length, in bytes.
        len: usize,
    },
    /// The greeting is not modified UTF-8 as Java's `readUTF` reads it
    /// (it would throw `UTFDataFormatException`): the malformed sequence
    /// starts `offset` bytes into the text (after the length field).
    GreetingInvalid {
        /// Offset of the malformed sequence in the text, in bytes.
        offset: usize,
    },
    /// The stream ended inside the greeting, after `got` of its `expected`
    /// bytes (both counting the 2-byte length field; `expected` is 2 while
    /// the length itself is incomplete).
    TruncatedGreeting {
        /// Bytes of the greeting received.
        got: usize,
        /// Bytes the greeting needed.
        expected: usize,
    },
    /// The stream ended inside a pair, after `got` of its 8 bytes.
    TruncatedPair {
        /// Bytes of the pair received (1 to 7).
        got: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::GreetingTooLong { len } => {
                write!(
                    f,
                    "greeting of {len} bytes refused (at most {MAX_GREETING})"
                )?;
                // A text client's first two bytes, read as the length.
                let field = u16::try_from(*len).map(u16::to_be_bytes);
                if let Ok(field) = field
                    && field.iter().all(|&b| b == b' ' || b.is_ascii_graphic())
                {
                    let text = String::from_utf8_lossy(&field);
                    write!(f, ", its length field being the text \"{text}\"")?;
                }
                write!(
                    f,
                    "; not a Java DataOutputStream client? --sum expects \
                     writeUTF: a 2-byte length, then the text"
                )
            }
            WireError::GreetingInvalid { offset } => write!(
                f,
                "greeting is not modified UTF-8 (bad sequence at byte {offset} of the text)"
            ),
            WireError::TruncatedGreeting { got, expected } => write!(
                f,
                "connection closed in the greeting ({got} of {expected} bytes)"
            ),
            WireError::TruncatedPair { got } => write!(
                f,
                "connection closed in the middle of a pair ({got} of {PAIR_LEN} bytes)"
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the greeting's 2-byte length (`have` bytes of it so far).
    Length,
    /// Reading the greeting's text, `len` bytes in all.
    Greeting { len: usize },
    /// Reading pairs (`have` bytes of the current one so far).
    Pairs,
    /// An error was returned: nothing more is decoded.
    Failed,
}

/// Streaming decoder of what a `--sum` client sends: its greeting, then
/// pairs of integers (see the module documentation for the format).
///
/// Feed the stream in order with [`feed`](Self::feed), iterating each
/// returned [`Feed`] to its end, then call [`finish`](Self::finish) at end
/// of stream. Memory: a fixed 8-byte buffer, plus the greeting while it is
/// incomplete (at most [`MAX_GREETING`] bytes).
///
/// ```
/// use chatd::service::wire::{Item, SumDecoder};
///
/// let mut d = SumDecoder::new();
/// let items: Vec<_> = d.feed(b"\x00\x02hi\x00\x00\x00\x54\x00").collect();
/// assert_eq!(items, [Ok(Item::Greeting("hi".into()))]);
/// let items: Vec<_> = d.feed(b"\x00\x00\x62").collect();
/// assert_eq!(items, [Ok(Item::Pair(84, 98))]);
/// assert_eq!(d.finish(), Ok(()));
/// ```
#[derive(Debug, Clone)]
pub struct SumDecoder {
    state: State,
    /// The incomplete length field or pair: `partial[..have]`.
    partial: [u8; PAIR_LEN],
    have: usize,
    /// The greeting's text so far, while in [`State::Greeting`].
    greeting: Vec<u8>,
}

impl Default for SumDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SumDecoder {
    /// A decoder at the start of a connection (expecting the greeting).
    pub fn new() -> SumDecoder {
        SumDecoder {
            state: State::Length,
            partial: [0; PAIR_LEN],
            have: 0,
            greeting: Vec::new(),
        }
    }

    /// Decodes the next `chunk` of the stream: the returned iterator yields
    /// each item completed by it, in order. Iterate it to its end (or to
    /// its first error): bytes it was not asked for are not kept.
    ///
    /// After an error, the decoder yields nothing more, whatever it is fed.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Feed<'a> {
        Feed {
            decoder: self,
            rest: chunk,
        }
    }

    /// End of stream: `Ok` if it ended between two pairs (or after a
    /// failure already returned by [`feed`](Self::feed)).
    ///
    /// Errors: [`WireError::TruncatedGreeting`] if it ended before the
    /// greeting was whole (even before its first byte: a client that
    /// connects and closes without a word did not speak the protocol);
    /// [`WireError::TruncatedPair`] inside a pair.
    pub fn finish(&self) -> Result<(), WireError> {
        match self.state {
            State::Length => Err(WireError::TruncatedGreeting {
                got: self.have,
                expected: LENGTH_LEN,
            }),
            State::Greeting { len } => Err(WireError::TruncatedGreeting {
                got: LENGTH_LEN + self.greeting.len(),
                expected: LENGTH_LEN + len,
            }),
            State::Pairs if self.have > 0 => Err(WireError::TruncatedPair { got: self.have }),
            State::Pairs | State::Failed => Ok(()),
        }
    }

    /// Whether the greeting has been decoded (pairs come next).
    pub fn greeted(&self) -> bool {
        self.state == State::Pairs
    }

    /// Moves up to `want - have` bytes from `rest` into `partial`; true
    /// when `partial[..want]` is complete.
    fn fill(&mut self, rest: &mut &[u8], want: usize) -> bool {
        let take = (want - self.have).min(rest.len());
        self.partial[self.have..self.have + take].copy_from_slice(&rest[..take]);
        self.have += take;
        *rest = &rest[take..];
        self.have == want
    }

    fn fail(&mut self, err: WireError) -> Option<Result<Item, WireError>> {
        self.state = State::Failed;
        self.greeting = Vec::new();
        Some(Err(err))
    }
}

/// The items completed by one chunk: see [`SumDecoder::feed`].
#[derive(Debug)]
pub struct Feed<'a> {
    decoder: &'a mut SumDecoder,
    rest: &'a [u8],
}

impl Iterator for Feed<'_> {
    type Item = Result<Item, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = &mut *self.decoder;
        loop {
            match d.state {
                State::Failed => return None,
                State::Length => {
                    if !d.fill(&mut self.rest, LENGTH_LEN) {
                        return None;
                    }
                    let len = usize::from(u16::from_be_bytes([d.partial[0], d.partial[1]]));
                    d.have = 0;
                    if len > MAX_GREETING {
                        return d.fail(WireError::GreetingTooLong { len });
                    }
                    d.greeting = Vec::with_capacity(len);
                    d.state = State::Greeting { len };
                }
                State::Greeting { len } => {
                    let take = (len - d.greeting.len()).min(self.rest.len());
                    d.greeting.extend_from_slice(&self.rest[..take]);
                    self.rest = &self.rest[take..];
                    if d.greeting.len() < len {
                        return None;
                    }
                    let text = std::mem::take(&mut d.greeting);
                    return match decode_modified_utf8(&text) {
                        Ok(text) => {
                            d.state = State::Pairs;
                            Some(Ok(Item::Greeting(text)))
                        }
                        Err(offset) => d.fail(WireError::GreetingInvalid { offset }),
                    };
                }
                State::Pairs => {
                    // Fast path: a whole pair in the chunk, nothing pending.
                    if d.have == 0
                        && let Some((pair, rest)) = self.rest.split_first_chunk::<PAIR_LEN>()
                    {
                        self.rest = rest;
                        return Some(Ok(pair_of(pair)));
                    }
                    if !d.fill(&mut self.rest, PAIR_LEN) {
                        return None;
                    }
                    d.have = 0;
                    return Some(Ok(pair_of(&d.partial)));
                }
            }
        }
    }
}

/// The two big-endian integers of an 8-byte request.
fn pair_of(bytes: &[u8; PAIR_LEN]) -> Item {
    let (a, b) = bytes.split_at(4);
    Item::Pair(
        i32::from_be_bytes(a.try_into().unwrap()),
        i32::from_be_bytes(b.try_into().unwrap()),
    )
}

/// The answer to a pair: `a + b` as Java's `int` computes it (two's
/// complement, wrapping on overflow), as the 4 big-endian bytes `writeInt`
/// sends.
pub(crate) fn answer(a: i32, b: i32) -> [u8; 4] {
    a.wrapping_add(b).to_be_bytes()
}

/// Decodes Java's *modified UTF-8* exactly as `DataInputStream.readUTF`
/// does, into a Rust string.
///
/// Accepted, as Java accepts them: bytes `0x00`–`0x7F` alone; two-byte
/// sequences `110xxxxx 10xxxxxx` (including `C0 80`, Java's encoding of
/// U+0000); three-byte sequences `1110xxxx 10xxxxxx 10xxxxxx`. Characters
/// outside the BMP arrive as two three-byte surrogates (as Java writes
/// them) and are paired back; a surrogate left unpaired, which a Java
/// `String` may hold but a Rust one may not, becomes U+FFFD.
///
/// Errors: the offset, in bytes, of the first sequence `readUTF` rejects
/// (a byte `10xxxxxx` or `1111xxxx` in first position, a missing or wrong
/// continuation byte, or a sequence cut by the end).
pub(crate) fn decode_modified_utf8(bytes: &[u8]) -> Result<String, usize> {
    let mut units = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let cont = |at: usize| match bytes.get(at) {
        Some(&b) if b & 0xC0 == 0x80 => Ok(u16::from(b & 0x3F)),
        _ => Err(()),
    };
    while i < bytes.len() {
        let c = u16::from(bytes[i]);
        let (unit, len) = match c >> 4 {
            0..=7 => (c, 1),
            12 | 13 => match cont(i + 1) {
                Ok(c2) => (((c & 0x1F) << 6) | c2, 2),
                Err(()) => return Err(i),
            },
            14 => match (cont(i + 1), cont(i + 2)) {
                (Ok(c2), Ok(c3)) => (((c & 0x0F) << 12) | (c2 << 6) | c3, 3),
                _ => return Err(i),
            },
            _ => return Err(i),
        };
        units.push(unit);
        i += len;
    }
    Ok(String::from_utf16_lossy(&units))
}

/// Encodes `text` as Java's `DataOutputStream.writeUTF` does: the 2-byte
/// big-endian length, then modified UTF-8 (U+0000 as `C0 80`, characters
/// outside the BMP as two three-byte surrogates). What a course client
/// sends first. Returns `None` if the encoding is longer than 65535 bytes
/// (`writeUTF` throws `UTFDataFormatException`). The server never sends
/// it: the tests use it to play the course client.
#[cfg(test)]
pub(crate) fn encode_write_utf(text: &str) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(text.len());
    for unit in text.encode_utf16() {
        match unit {
            0x0001..=0x007F => body.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                body.push(0xC0 | (unit >> 6) as u8);
                body.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                body.push(0xE0 | (unit >> 12) as u8);
                body.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                body.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    let len = u16::try_from(body.len()).ok()?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Everything `chunks` yield in order, then the result of `finish`.
    fn decode_chunks<C: AsRef<[u8]>>(
        chunks: &[C],
    ) -> (Vec<Result<Item, WireError>>, Result<(), WireError>) {
        let mut decoder = SumDecoder::new();
        let mut items = Vec::new();
        for chunk in chunks {
            items.extend(decoder.feed(chunk.as_ref()));
        }
        (items, decoder.finish())
    }

    fn greeting(text: &str) -> Vec<u8> {
        encode_write_utf(text).unwrap()
    }

    fn pairs(pairs: &[(i32, i32)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(a, b)| a.to_be_bytes().into_iter().chain(b.to_be_bytes()))
            .collect()
    }

    #[test]
    fn course_client_conversation() {
        let mut stream = greeting("127.0.0.1");
        stream.extend(pairs(&[(84, 98), (28, 10), (89, 52)]));
        let (items, end) = decode_chunks(&[&stream]);
        assert_eq!(
            items,
            [
                Ok(Item::Greeting("127.0.0.1".into())),
                Ok(Item::Pair(84, 98)),
                Ok(Item::Pair(28, 10)),
                Ok(Item::Pair(89, 52)),
            ]
        );
        assert_eq!(end, Ok(()));
    }

    #[test]
    fn answers_wrap_as_java_int() {
        assert_eq!(answer(84, 98), 182i32.to_be_bytes());
        assert_eq!(answer(i32::MAX, 1), i32::MIN.to_be_bytes());
        assert_eq!(answer(i32::MIN, -1), i32::MAX.to_be_bytes());
        assert_eq!(answer(-5, 3), [0xFF, 0xFF, 0xFF, 0xFE]);
        assert_eq!(answer(i32::MIN, i32::MIN), [0, 0, 0, 0]);
    }

    #[test]
    fn pairs_are_big_endian_twos_complement() {
        let mut stream = greeting("");
        stream.extend([0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0, 0, 0]);
        stream.extend([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0]);
        let (items, end) = decode_chunks(&[&stream]);
        assert_eq!(
            items,
            [
                Ok(Item::Greeting(String::new())),
                Ok(Item::Pair(i32::MAX, i32::MIN)),
                Ok(Item::Pair(-1, 256)),
            ]
        );
        assert_eq!(end, Ok(()));
    }

    #[test]
    fn truncated_greetings() {
        let t = |got, expected| Err(WireError::TruncatedGreeting { got, expected });
        assert_eq!(decode_chunks::<&[u8]>(&[]), (vec![], t(0, 2)));
        assert_eq!(decode_chunks(&[b"\x00"]), (vec![], t(1, 2)));
        assert_eq!(decode_chunks(&[b"\x00\x09127"]), (vec![], t(5, 11)));
        assert_eq!(decode_chunks(&[b"\x00\x09"]), (vec![], t(2, 11)));
    }

    #[test]
    fn half_a_pair_at_the_end() {
        let mut stream = greeting("x");
        stream.extend(pairs(&[(1, 2)]));
        stream.extend([0, 0, 0]);
        let (items, end) = decode_chunks(&[&stream]);
        assert_eq!(items.len(), 2);
        assert_eq!(end, Err(WireError::TruncatedPair { got: 3 }));
        assert_eq!(
            end.unwrap_err().to_string(),
            "connection closed in the middle of a pair (3 of 8 bytes)"
        );
    }

    #[test]
    fn oversized_greeting_fails_as_soon_as_its_length_is_known() {
        let mut d = SumDecoder::new();
        let items: Vec<_> = d.feed(b"\x01\x00").collect();
        assert_eq!(items, [Err(WireError::GreetingTooLong { len: 256 })]);
        // Nothing more, whatever follows.
        assert_eq!(d.feed(&[0; 300]).count(), 0);
        assert_eq!(d.finish(), Ok(()));
        let longest = "a".repeat(MAX_GREETING);
        let (items, _) = decode_chunks(&[greeting(&longest)]);
        assert_eq!(items, [Ok(Item::Greeting(longest))]);
        assert_eq!(
            WireError::GreetingTooLong { len: 65535 }.to_string(),
            "greeting of 65535 bytes refused (at most 255); not a Java \
             DataOutputStream client? --sum expects writeUTF: a 2-byte \
             length, then the text"
        );
    }

    #[test]
    fn a_text_client_is_told_what_the_service_expects() {
        let mut d = SumDecoder::new();
        let items: Vec<_> = d.feed(b"hello\n").collect();
        let [Err(err)] = items.as_slice() else {
            panic!("{items:?}");
        };
        assert_eq!(
            err.to_string(),
            "greeting of 26725 bytes refused (at most 255), its length field \
             being the text \"he\"; not a Java DataOutputStream client? --sum \
             expects writeUTF: a 2-byte length, then the text"
        );
    }

    #[test]
    fn invalid_greetings_are_refused_where_readutf_throws() {
        for (text, offset) in [
            (&b"ab\x80"[..], 2),      // continuation byte first
            (b"\xF0\x9F\x98\x80", 0), // 4-byte UTF-8: not modified UTF-8
            (b"\xC3", 0),             // cut two-byte sequence
            (b"a\xC3A", 1),           // wrong continuation
            (b"\xE2\x82", 0),         // cut three-byte sequence
            (b"xy\xE2\x82\x41", 2),   // wrong third byte
            (b"\xFF", 0),
        ] {
            let mut stream = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
            stream.extend_from_slice(text);
            stream.extend(pairs(&[(1, 1)]));
            let (items, end) = decode_chunks(&[&stream]);
            assert_eq!(
                items,
                [Err(WireError::GreetingInvalid { offset })],
                "{text:?}"
            );
            assert_eq!(end, Ok(()));
        }
    }

    #[test]
    fn modified_utf8_as_java_reads_it() {
        assert_eq!(decode_modified_utf8(b"").as_deref(), Ok(""));
        assert_eq!(decode_modified_utf8(b"10.0.0.7").as_deref(), Ok("10.0.0.7"));
        // C0 80 is Java's U+0000; a raw 00 is accepted by readUTF too.
        assert_eq!(decode_modified_utf8(b"a\xC0\x80b").as_deref(), Ok("a\0b"));
        assert_eq!(decode_modified_utf8(b"\x00").as_deref(), Ok("\0"));
        assert_eq!(decode_modified_utf8("é€".as_bytes()).as_deref(), Ok("é€"));
        // U+1F600 as Java writes it: two surrogates of three bytes each.
        let smiley = b"\xED\xA0\xBD\xED\xB8\x80";
        assert_eq!(decode_modified_utf8(smiley).as_deref(), Ok("\u{1F600}"));
        // A lone surrogate: Java keeps it, Rust cannot.
        assert_eq!(
            decode_modified_utf8(b"\xED\xA0\xBD").as_deref(),
            Ok("\u{FFFD}")
        );
    }

    #[test]
    fn write_utf_matches_java() {
        assert_eq!(encode_write_utf("127.0.0.1").unwrap(), b"\x00\x09127.0.0.1");
        assert_eq!(encode_write_utf("\0").unwrap(), b"\x00\x02\xC0\x80");
        assert_eq!(
            encode_write_utf("\u{1F600}").unwrap(),
            b"\x00\x06\xED\xA0\xBD\xED\xB8\x80"
        );
        assert!(encode_write_utf(&"a".repeat(65535)).is_some());
        assert!(encode_write_utf(&"a".repeat(65536)).is_none());
        assert!(encode_write_utf(&"é".repeat(32768)).is_none());
    }

    #[test]
    fn messages_are_one_line() {
        for err in [
            WireError::GreetingTooLong { len: 300 },
            WireError::GreetingInvalid { offset: 3 },
            WireError::TruncatedGreeting {
                got: 1,
                expected: 2,
            },
            WireError::TruncatedPair { got: 7 },
        ] {
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.is_empty(), "{text}");
        }
    }

    /// Streams that look like conversations (a greeting, pairs, a cut end)
    /// and streams of arbitrary bytes.
    fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
        let conversation = (
            ".{0,20}",
            prop::collection::vec(any::<(i32, i32)>(), 0..40),
            0..8usize,
        )
            .prop_map(|(text, list, cut)| {
                let mut stream = encode_write_utf(&text).unwrap();
                stream.extend(pairs(&list));
                stream.truncate(stream.len() - cut.min(stream.len()));
                stream
            });
        prop_oneof![
            conversation,
            prop::collection::vec(any::<u8>(), 0..400),
            // Short greeting lengths, then arbitrary bytes.
            (0..40u16, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(len, rest)| {
                let mut stream = len.to_be_bytes().to_vec();
                stream.extend(rest);
                stream
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Splitting the stream anywhere gives the same items and end.
        #[test]
        fn any_chunking_gives_the_same_items(
            stream in stream_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            cuts.push(0);
            cuts.push(stream.len());
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            prop_assert_eq!(decode_chunks(&chunks), decode_chunks(&[&stream]));
            let bytes: Vec<[u8; 1]> = stream.iter().map(|&b| [b]).collect();
            prop_assert_eq!(decode_chunks(&bytes), decode_chunks(&[&stream]));
        }

        /// A well-formed conversation decodes to what was encoded.
        #[test]
        fn conversations_round_trip(
            text in "\\PC{0,40}",
            list in prop::collection::vec(any::<(i32, i32)>(), 0..50),
        ) {
            let mut stream = encode_write_utf(&text).unwrap();
            prop_assume!(stream.len() - 2 <= MAX_GREETING);
            stream.extend(pairs(&list));
            let (items, end) = decode_chunks(&[&stream]);
            let mut expected = vec![Ok(Item::Greeting(text))];
            expected.extend(list.iter().map(|&(a, b)| Ok(Item::Pair(a, b))));
            prop_assert_eq!(items, expected);
            prop_assert_eq!(end, Ok(()));
        }

        /// The decoder accepts exactly the byte strings `writeUTF` can
        /// produce from some UTF-16 text, plus what `readUTF` tolerates.
        #[test]
        fn modified_utf8_round_trips(text in "\\PC{0,30}|.{0,30}") {
            let encoded = encode_write_utf(&text).unwrap();
            prop_assert_eq!(decode_modified_utf8(&encoded[2..]), Ok(text));
        }

        #[test]
        fn sums_wrap_like_i64_modulo(a in any::<i32>(), b in any::<i32>()) {
            let wide = (i64::from(a) + i64::from(b)) as i32;
            prop_assert_eq!(answer(a, b), wide.to_be_bytes());
        }
    }
}
