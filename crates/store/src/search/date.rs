//! ISO 8601 dates in queries, read as the span of time they name, in epoch milliseconds.
//!
//! A date is as precise as it is written: `2024` is a year, `2024-05` a month, `2024-05-17`
//! a day, `2024-05-17T10:30` a minute, `…:45` a second, `…:45.123` a millisecond (further
//! digits are dropped). Without an offset it is UTC. Spans let one rule serve equality and both
//! kinds of range bound (see the `search` module).

use crate::Millis;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// The span `[start, end)` a date names, or `None` when `text` is no date.
pub(crate) fn span(text: &str) -> Option<(Millis, Millis)> {
    let mut cursor = Cursor { bytes: text.as_bytes(), pos: 0 };
    let year = cursor.digits(4)?;
    if cursor.done() {
        return Some((day_start(year, 1, 1), day_start(year + 1, 1, 1)));
    }
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let next_month = if month == 12 { day_start(year + 1, 1, 1) } else { day_start(year, month + 1, 1) };
    if cursor.done() {
        return Some((day_start(year, month, 1), next_month));
    }
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = day_start(year, month, day);
    if cursor.done() {
        return Some((midnight, midnight + MS_PER_DAY));
    }
    cursor.expect(b'T')?;
    let hour = cursor.digits(2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut start = midnight + (hour * 60 + minute) * MS_PER_MINUTE;
    let mut width = MS_PER_MINUTE;
    if cursor.eat(b':') {
        let second = cursor.digits(2)?;
        if second > 59 {
            return None;
        }
        start += second * 1000;
        width = 1000;
        if cursor.eat(b'.') {
            let digits = cursor.run_of_digits();
            if digits.is_empty() {
                return None;
            }
            // Milliseconds: the first three digits, right-padded.
            let millis = digits.iter().chain([b'0'; 3].iter()).take(3).fold(0, |n, d| n * 10 + i64::from(d - b'0'));
            start += millis;
            width = 1;
        }
    }
    let offset = cursor.offset()?;
    if !cursor.done() {
        return None;
    }
    Some((start - offset, start - offset + width))
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm), in milliseconds.
fn day_start(year: i64, month: i64, day: i64) -> Millis {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era - 719_468) * MS_PER_DAY
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let run = self.bytes.get(self.pos..self.pos + count)?;
        if !run.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += count;
        Some(run.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    fn run_of_digits(&mut self) -> &[u8] {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }

    /// `Z`, `±HH:MM`, `±HHMM` or nothing (UTC), as milliseconds east of UTC.
    fn offset(&mut self) -> Option<Millis> {
        if self.done() || self.eat(b'Z') {
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        self.eat(b':');
        let minutes = self.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 60 + minutes) * MS_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_follow_precision() {
        let day = 86_400_000;
        assert_eq!(span("1970-01-01"), Some((0, day)));
        assert_eq!(span("2024-01-01"), Some((1_704_067_200_000, 1_704_067_200_000 + day)));
        assert_eq!(span("2024"), Some((1_704_067_200_000, 1_735_689_600_000)));
        assert_eq!(span("2024-02"), Some((1_706_745_600_000, 1_709_251_200_000)));
        assert_eq!(span("2024-12"), Some((1_733_011_200_000, 1_735_689_600_000)));
        assert_eq!(span("2024-02-29"), Some((1_709_164_800_000, 1_709_251_200_000)));
        assert_eq!(span("2024-12-31T23:59"), Some((1_735_689_540_000, 1_735_689_600_000)));
        assert_eq!(span("2024-12-31T23:59:59"), Some((1_735_689_599_000, 1_735_689_600_000)));
        assert_eq!(span("2024-12-31T23:59:59.999Z"), Some((1_735_689_599_999, 1_735_689_600_000)));
        assert_eq!(span("2024-12-31T23:59:59.9"), Some((1_735_689_599_900, 1_735_689_599_901)));
        assert_eq!(span("2024-12-31T23:59:59.123456"), Some((1_735_689_599_123, 1_735_689_599_124)));
        assert_eq!(span("2025-01-01T01:00:00+01:00"), Some((1_735_689_600_000, 1_735_689_601_000)));
        assert_eq!(span("2024-12-31T19:00:00-0500"), Some((1_735_689_600_000, 1_735_689_601_000)));
        assert_eq!(span("1969-12-31"), Some((-day, 0)));
    }

    #[test]
    fn rejects_what_is_no_date() {
        for text in [
            "",
            "24",
            "2024-1",
            "2024-13",
            "2023-02-29",
            "2024-04-31",
            "2024-00-10",
            "2024-01-01T",
            "2024-01-01T24:00",
            "2024-01-01T10:60",
            "2024-01-01T10:00:61",
            "2024-01-01T10:00:00.",
            "2024-01-01 10:00",
            "2024-01-01Tx",
            "2024-01-01T10:00Zjunk",
            "2024-01-01T10:00+25:00",
            "abcd",
            "２０２４",
            "1e10",
        ] {
            assert_eq!(span(text), None, "{text}");
        }
    }
}
