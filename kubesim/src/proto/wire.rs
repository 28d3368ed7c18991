//! The protobuf wire format: a lazy reader of (field number, value).

use super::ProtoError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    /// A default value (what gogo-protobuf writes for unset non-pointer fields).
    pub fn is_zero(&self) -> bool {
        match self {
            WireValue::Varint(n) | WireValue::Fixed64(n) => *n == 0,
            WireValue::Fixed32(n) => *n == 0,
            WireValue::Bytes(b) => b.is_empty(),
        }
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| ProtoError::Wire("truncated varint".into()))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoError::Wire("varint too long".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Wire("truncated field".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u32, WireValue<'a>), ProtoError> {
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).map_err(|_| ProtoError::Wire("field number".into()))?;
        let v = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtoError::Wire("length".into()))?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            other => return Err(ProtoError::Wire(format!("wire type {other}"))),
        };
        Ok((num, v))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, WireValue<'a>), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        let r = self.field();
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed32.
        let buf = [0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0];
        let got: Vec<_> = Reader::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                (1, WireValue::Varint(300)),
                (2, WireValue::Bytes(b"hi")),
                (3, WireValue::Fixed32(1))
            ]
        );
        assert!(Reader::new(&[0x12, 0x05, b'x']).next().unwrap().is_err());
    }
}
