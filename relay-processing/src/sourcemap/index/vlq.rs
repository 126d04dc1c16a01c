//! Base64 VLQ numbers, as Source Map v3 `mappings` (and Metro's function maps) encode them.
//!
//! Each base64 digit carries 6 bits: bit 5 says another digit follows, bits 0–4 are data,
//! least significant group first. In the assembled number, bit 0 is the sign and the rest the
//! magnitude (`A` = 0, `C` = 1, `D` = -1, `gB` = 16).

use super::DecodeError;

/// Marks bytes that are not base64 digits in [`DIGITS`].
const INVALID: u8 = 0xff;

/// The value of each base64 digit (`A`–`Z`, `a`–`z`, `0`–`9`, `+`, `/`), [`INVALID`] otherwise.
static DIGITS: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// At most 7 digits (35 bits): enough for any 32-bit value and its sign.
const MAX_SHIFT: u32 = 30;

/// Why a VLQ number did not decode; turns into a [`DecodeError`]. Small and `Copy`, so the
/// decoder's hot loop carries no drop glue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VlqError {
    InvalidBase64 { at: usize, byte: u8 },
    Unterminated { at: usize },
    Overflow { at: usize },
}

impl From<VlqError> for DecodeError {
    #[cold]
    fn from(error: VlqError) -> Self {
        match error {
            VlqError::InvalidBase64 { at, byte } => DecodeError::InvalidBase64 {
                at,
                byte: char::from(byte),
            },
            VlqError::Unterminated { at } => DecodeError::UnterminatedVlq { at },
            VlqError::Overflow { at } => DecodeError::VlqOverflow { at },
        }
    }
}

/// Decodes the number starting at `bytes[*at]` and moves `at` past it.
///
/// The caller has checked that `bytes[*at]` exists and is not a separator (`,` or `;`).
#[inline(always)]
pub(super) fn decode(bytes: &[u8], at: &mut usize) -> Result<i64, VlqError> {
    // Most numbers in real maps are one digit (|value| < 16), most others two (< 512).
    if let Some(&byte) = bytes.get(*at) {
        let digit = DIGITS[byte as usize];
        if digit < 0x20 {
            *at += 1;
            return Ok(signed(u64::from(digit)));
        }
        if digit != INVALID {
            if let Some(&next) = bytes.get(*at + 1) {
                let high = DIGITS[next as usize];
                if high < 0x20 {
                    *at += 2;
                    return Ok(signed(u64::from(digit & 0x1f) | u64::from(high) << 5));
                }
            }
        }
    }
    decode_long(bytes, at)
}

#[inline(never)]
fn decode_long(bytes: &[u8], at: &mut usize) -> Result<i64, VlqError> {
    let start = *at;
    let mut i = *at;
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let Some(&byte) = bytes.get(i) else {
            return Err(VlqError::Unterminated { at: start });
        };
        let digit = DIGITS[byte as usize];
        if digit == INVALID {
            return Err(if byte == b',' || byte == b';' {
                VlqError::Unterminated { at: start }
            } else {
                VlqError::InvalidBase64 { at: i, byte }
            });
        }
        i += 1;
        value |= u64::from(digit & 0x1f) << shift;
        if digit & 0x20 == 0 {
            break;
        }
        shift += 5;
        if shift > MAX_SHIFT {
            return Err(VlqError::Overflow { at: start });
        }
    }
    *at = i;
    Ok(signed(value))
}

/// Bit 0 is the sign; "-0" (`B`) is 0.
#[inline(always)]
fn signed(value: u64) -> i64 {
    let magnitude = (value >> 1) as i64;
    if value & 1 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<i64>, DecodeError> {
        let bytes = text.as_bytes();
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            out.push(decode(bytes, &mut at)?);
        }
        Ok(out)
    }

    fn one(bytes: &[u8]) -> Result<i64, DecodeError> {
        Ok(decode(bytes, &mut 0)?)
    }

    #[test]
    fn single_digits_and_signs() {
        assert_eq!(all("ACDEF").unwrap(), [0, 1, -1, 2, -2]);
        assert_eq!(all("B").unwrap(), [0], "-0 is 0");
        assert_eq!(all("e").unwrap(), [15]);
        assert_eq!(all("f").unwrap(), [-15]);
    }

    #[test]
    fn continuation_digits() {
        assert_eq!(all("gB").unwrap(), [16]);
        assert_eq!(all("hB").unwrap(), [-16]);
        assert_eq!(all("2H").unwrap(), [123]);
        assert_eq!(all("gBgB").unwrap(), [16, 16]);
        // 2^31 - 1 and -(2^31 - 1): the largest values Source Map v3 allows.
        assert_eq!(all("+/////D").unwrap(), [i64::from(i32::MAX)]);
        assert_eq!(all("//////D").unwrap(), [-i64::from(i32::MAX)]);
    }

    #[test]
    fn errors() {
        assert_eq!(all("g"), Err(DecodeError::UnterminatedVlq { at: 0 }));
        assert_eq!(one(b"g,"), Err(DecodeError::UnterminatedVlq { at: 0 }));
        assert_eq!(one(b";"), Err(DecodeError::UnterminatedVlq { at: 0 }));
        assert_eq!(
            all("A!"),
            Err(DecodeError::InvalidBase64 { at: 1, byte: '!' })
        );
        assert_eq!(
            all("AAé"),
            Err(DecodeError::InvalidBase64 {
                at: 2,
                byte: '\u{c3}'
            })
        );
        assert_eq!(all("ggggggggA"), Err(DecodeError::VlqOverflow { at: 0 }));
    }
}
