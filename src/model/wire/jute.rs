//! Reading jute's binary encoding (zookeeper-jute: `BinaryInputArchive`/`BinaryOutputArchive`): big-endian
//! `int` (4 bytes) and `long` (8), `boolean` as one byte, `buffer` as an int length (-1 for null) then the
//! bytes, `ustring` the same with UTF-8, `vector` as an int count (-1 for null) then the items. A record is its
//! fields back to back, with nothing around them.

/// Why a read stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Short {
    /// More bytes are needed: this many from the start of the slice being read, when known.
    Need(usize),
    /// The bytes cannot be what the layout says (what was read, where).
    Bad(String),
}

/// A cursor over bytes already received.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Bytes read so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the cursor.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| Short::Bad(format!("a length of {n} bytes")))?;
        if end > self.bytes.len() {
            return Err(Short::Need(end));
        }
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn int(&mut self) -> Result<i32, Short> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn long(&mut self) -> Result<i64, Short> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn boolean(&mut self, what: &str) -> Result<bool, Short> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Short::Bad(format!("{what} is the byte {b}, not a boolean (0 or 1)"))),
        }
    }

    /// A jute `buffer`: None for null (length -1); a length above `limit` or below -1 is refused.
    pub fn buffer(&mut self, what: &str, limit: usize) -> Result<Option<&'a [u8]>, Short> {
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        if len < -1 || len as usize > limit {
            return Err(Short::Bad(format!("{what} has a length of {len} bytes")));
        }
        self.take(len as usize).map(Some)
    }

    /// A jute `ustring`: None for null; the bytes must be UTF-8.
    pub fn ustring(&mut self, what: &str, limit: usize) -> Result<Option<String>, Short> {
        match self.buffer(what, limit)? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(|s| Some(s.to_string()))
                .map_err(|_| Short::Bad(format!("{what} is not UTF-8 text"))),
        }
    }
}

#[cfg(test)]
pub(crate) mod build {
    //! Writing jute, for the tests' hand-built messages.
    #[derive(Default)]
    pub struct Out(pub Vec<u8>);

    impl Out {
        pub fn int(mut self, v: i32) -> Out {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn long(mut self, v: i64) -> Out {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn boolean(mut self, v: bool) -> Out {
            self.0.push(v as u8);
            self
        }
        pub fn buffer(self, b: &[u8]) -> Out {
            let mut o = self.int(b.len() as i32);
            o.0.extend_from_slice(b);
            o
        }
        pub fn ustring(self, s: &str) -> Out {
            self.buffer(s.as_bytes())
        }
        pub fn raw(mut self, b: &[u8]) -> Out {
            self.0.extend_from_slice(b);
            self
        }
        /// This record behind an int length (the framing of the client and election channels).
        pub fn framed(self) -> Vec<u8> {
            Out::default().buffer(&self.0).0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::Out;
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_says_how_much_more_it_needs() {
        let b = Out::default().int(-2).long(0x1_0000_0003).ustring("/x").boolean(true).0;
        let mut r = Reader::new(&b);
        assert_eq!(r.int(), Ok(-2));
        assert_eq!(r.long(), Ok(0x1_0000_0003));
        assert_eq!(r.ustring("path", 100), Ok(Some("/x".into())));
        assert_eq!(r.boolean("flag"), Ok(true));
        assert_eq!(r.remaining(), 0);
        let mut r = Reader::new(&b[..5]);
        r.int().unwrap();
        assert_eq!(r.long(), Err(Short::Need(12)));
        let null = Out::default().int(-1).0;
        assert_eq!(Reader::new(&null).buffer("data", 10), Ok(None));
        let neg = Out::default().int(-7).0;
        assert!(matches!(Reader::new(&neg).buffer("data", 10), Err(Short::Bad(m)) if m.contains("-7")));
        let big = Out::default().int(11).0;
        assert!(matches!(Reader::new(&big).buffer("data", 10), Err(Short::Bad(_))));
        assert!(matches!(Reader::new(&[2]).boolean("readOnly"), Err(Short::Bad(_))));
        let bad_utf8 = Out::default().buffer(&[0xff, 0xfe]).0;
        assert!(matches!(Reader::new(&bad_utf8).ustring("path", 10), Err(Short::Bad(_))));
    }
}
