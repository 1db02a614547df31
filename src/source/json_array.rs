//! A JSON array's elements as byte slices, read a block at a time.
//!
//! Why: serde_json parses a `Read` byte by byte (each through `io::Bytes`), more than
//! twice the cost of parsing the same text from a slice; holding the whole file to parse
//! it as a slice costs its size in memory (some 200 MB at a million people). So the file
//! is read in blocks, each element is found by its brackets (strings skipped with
//! `memchr`), and parsed from the slice it spans.
//!
//! This only finds where elements end; it checks nothing else. Anything it does not
//! expect (not an array, a trailing comma, text after the array, a file that ends inside
//! the array) makes it give up, and so does an element that does not parse: the caller
//! then reads the file again with serde_json's own reader, whose verdict and message
//! stand. A wrong split can therefore only cost time, never change a result.

use std::io::Read;

/// How much is read at a time (and the most held besides the element being read).
const BLOCK: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the opening `[`.
    Before,
    /// After `[`: an element or `]`.
    Open,
    /// After `,`: an element.
    Next,
    /// Inside an element.
    In,
    /// After the closing `]`.
    After,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Hands every element of the JSON array in `reader` to `each`, in order, until `each`
/// returns `false`. `Ok(true)`: the whole array was handed over; `Ok(false)`: something
/// unusual was met (see the module comment) and the caller must read it another way.
///
/// # Errors
/// Reading failed.
pub(crate) fn each_element(
    reader: &mut impl Read,
    mut each: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<bool> {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    let mut pos = 0;
    let mut start = 0;
    let mut phase = Phase::Before;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    loop {
        if pos == buf.len() {
            // Keep only the element being read, then read the next block after it.
            let keep = if phase == Phase::In { start } else { pos };
            buf.drain(..keep);
            pos -= keep;
            start -= keep.min(start);
            let read = reader.take(BLOCK as u64).read_to_end(&mut buf)?;
            if read == 0 {
                return Ok(phase == Phase::After);
            }
        }
        let b = buf[pos];
        match phase {
            Phase::In if escaped => {
                escaped = false;
                pos += 1;
            }
            Phase::In if in_string => match memchr::memchr2(b'"', b'\\', &buf[pos..]) {
                None => pos = buf.len(),
                Some(i) => {
                    pos += i + 1;
                    if buf[pos - 1] == b'\\' {
                        escaped = true;
                    } else {
                        in_string = false;
                    }
                }
            },
            Phase::In => {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    b']' | b',' if depth == 0 => {
                        if !each(&buf[start..pos]) {
                            return Ok(false);
                        }
                        phase = if b == b']' { Phase::After } else { Phase::Next };
                    }
                    // A `}` closing nothing: not JSON.
                    b'}' => return Ok(false),
                    _ => {}
                }
                pos += 1;
            }
            _ if is_space(b) => pos += 1,
            Phase::Before if b == b'[' => {
                phase = Phase::Open;
                pos += 1;
            }
            Phase::Open if b == b']' => {
                phase = Phase::After;
                pos += 1;
            }
            Phase::Open | Phase::Next if b != b']' && b != b',' => {
                phase = Phase::In;
                start = pos;
            }
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8]) -> (bool, Vec<String>) {
        let mut out = Vec::new();
        let done = each_element(&mut &text[..], |e| {
            out.push(String::from_utf8_lossy(e).trim().to_string());
            true
        })
        .expect("read");
        (done, out)
    }

    #[test]
    fn elements_are_split_at_their_own_commas_only() {
        let (done, out) = split(
            br#" [ {"a":"x,]}y","b":[1,{"c":"\"],"}]} , "s\\" ,3,[[]] ,{} ]
"#,
        );
        assert!(done);
        assert_eq!(
            out,
            [
                r#"{"a":"x,]}y","b":[1,{"c":"\"],"}]}"#,
                r#""s\\""#,
                "3",
                "[[]]",
                "{}"
            ]
        );
        assert_eq!(split(b"[]"), (true, vec![]));
        assert_eq!(split(b" [ ] \n"), (true, vec![]));
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parser() {
        for text in [
            &b""[..],
            b"{}",
            b"[1,]",
            b"[,1]",
            b"[1",
            b"[1,2] x",
            b"[1,2]]",
            b"[{]",
            b"[}]",
            b"[\"abc",
        ] {
            assert!(!split(text).0, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn an_element_across_blocks_is_whole() {
        let long = "x".repeat(BLOCK + 17);
        let text = format!(r#"[{{"a":"{long}\"q"}},"b\\",{}]"#, "1".repeat(BLOCK));
        let (done, out) = split(text.as_bytes());
        assert!(done);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], format!(r#"{{"a":"{long}\"q"}}"#));
        assert_eq!(out[1], r#""b\\""#);
        assert_eq!(out[2].len(), BLOCK);
    }

    #[test]
    fn a_refused_element_stops_the_split() {
        let mut seen = 0;
        let done = each_element(&mut &b"[1,2,3]"[..], |_| {
            seen += 1;
            seen < 2
        })
        .expect("read");
        assert!(!done);
        assert_eq!(seen, 2);
    }
}
