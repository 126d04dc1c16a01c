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

/// Decodes the number starting at `bytes[*at]` and moves `at` past it.
///
/// The caller has checked that `bytes[*at]` is not a separator (`,` or `;`).
#[inline]
pub(super) fn decode(bytes: &[u8], at: &mut usize) -> Result<i64, DecodeError> {
    let start = *at;
    let mut i = *at;
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let Some(&byte) = bytes.get(i) else {
            return Err(DecodeError::UnterminatedVlq { at: start });
        };
        let digit = DIGITS[byte as usize];
        if digit == INVALID {
            return Err(if byte == b',' || byte == b';' {
                DecodeError::UnterminatedVlq { at: start }
            } else {
                DecodeError::InvalidBase64 {
                    at: i,
                    byte: char::from(byte),
                }
            });
        }
        i += 1;
        value |= u64::from(digit & 0x1f) << shift;
        if digit & 0x20 == 0 {
            break;
        }
        shift += 5;
        if shift > MAX_SHIFT {
            return Err(DecodeError::VlqOverflow { at: start });
        }
    }
    *at = i;
    let magnitude = (value >> 1) as i64;
    // "-0" (`B`) is 0.
    Ok(if value & 1 == 1 {
        -magnitude
    } else {
        magnitude
    })
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
        let mut at = 0;
        assert_eq!(
            decode(b"g,", &mut at),
            Err(DecodeError::UnterminatedVlq { at: 0 })
        );
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
