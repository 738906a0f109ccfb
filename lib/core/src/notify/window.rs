//! When a follow-up may go out: a daily window per channel in the school's time zone. A
//! follow-up due outside its window is due at the window's next start instead — decided at
//! intake (`send_at`, the scheduler's `at()`) and again at send time, so a retry, a release, a
//! sweep or a recovered crash never texts a phone at night either.
//!
//! Civil times are read with the tz database (`Asia/Almaty` moved from UTC+6 to UTC+5 on
//! 2024-03-01; a fixed offset would be an hour off on one side of that day).

use std::fmt;
use std::str::FromStr;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::domain::Channel;

/// `HH:MM-HH:MM`, local time: from the start (inclusive) to the end (exclusive). A start after
/// the end is a window across midnight (`22:00-06:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    start: Time,
    end: Time,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a window: HH:MM-HH:MM (e.g. 09:00-21:00), or \"always\"")]
pub struct BadWindow(String);

impl DailyWindow {
    pub fn new(start: Time, end: Time) -> Option<Self> {
        (start != end).then_some(DailyWindow { start, end })
    }

    fn contains(&self, t: Time) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl fmt::Display for DailyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M")
        )
    }
}

/// A channel's window, or none: `always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(Option<DailyWindow>);

impl Window {
    pub const ALWAYS: Window = Window(None);
}

impl FromStr for Window {
    type Err = BadWindow;
    fn from_str(raw: &str) -> Result<Self, BadWindow> {
        let bad = || BadWindow(raw.to_owned());
        let s = raw.trim();
        if s.eq_ignore_ascii_case("always") {
            return Ok(Window::ALWAYS);
        }
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let time = |x: &str| -> Result<Time, BadWindow> {
            let x = x.trim();
            // Exactly HH:MM: "9:00" or "09:00:30" would be guesses.
            if x.len() != 5 {
                return Err(bad());
            }
            Time::strptime("%H:%M", x).map_err(|_| bad())
        };
        let (start, end) = (time(a)?, time(b)?);
        // "24:00" is not a time; a window to midnight is written "…-00:00".
        DailyWindow::new(start, end)
            .map(|w| Window(Some(w)))
            .ok_or_else(bad)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("always"),
            Some(w) => w.fmt(f),
        }
    }
}

/// The windows of both channels in one time zone (`NOTIFY_TIMEZONE`, `NOTIFY_SMS_WINDOW`,
/// `NOTIFY_EMAIL_WINDOW`).
#[derive(Debug, Clone, PartialEq)]
pub struct SendWindows {
    tz: TimeZone,
    sms: Window,
    email: Window,
}

impl SendWindows {
    pub fn new(tz: TimeZone, sms: Window, email: Window) -> Self {
        SendWindows { tz, sms, email }
    }

    /// No window on either channel (tests, and a school that wants none).
    pub fn always() -> Self {
        SendWindows::new(TimeZone::UTC, Window::ALWAYS, Window::ALWAYS)
    }

    fn of(&self, channel: Channel) -> Window {
        match channel {
            Channel::Sms => self.sms,
            Channel::Email => self.email,
        }
    }

    pub fn allows(&self, channel: Channel, at: Timestamp) -> bool {
        self.next_allowed(channel, at) == at
    }

    /// `at` when it is inside the channel's window, else the window's next start.
    pub fn next_allowed(&self, channel: Channel, at: Timestamp) -> Timestamp {
        let Window(Some(w)) = self.of(channel) else {
            return at;
        };
        let local = at.to_zoned_datetime(self.tz.clone());
        if w.contains(local.time()) {
            return at;
        }
        // Today's start if it is still ahead, else tomorrow's. A start inside a gap of the zone
        // (a clock jumping forward) resolves to the first instant after it.
        let start_on = |date: jiff::civil::Date| {
            date.to_datetime(w.start)
                .to_zoned_datetime(self.tz.clone())
                .map(|z| z.timestamp())
        };
        let today = start_on(local.date());
        match today {
            Ok(t) if t > at => t,
            _ => local
                .date()
                .checked_add(1.day())
                .ok()
                .and_then(|d| start_on(d).ok())
                // Beyond the calendar's end: send rather than never.
                .unwrap_or(at),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} sms {} email {}",
            self.tz.iana_name().unwrap_or("UTC"),
            self.sms,
            self.email
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn almaty() -> SendWindows {
        SendWindows::new(
            TimeZone::get("Asia/Almaty").unwrap(),
            "09:00-21:00".parse().unwrap(),
            Window::ALWAYS,
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn an_sms_due_at_night_waits_for_nine_in_almaty() {
        let w = almaty();
        // 02:50 Almaty (UTC+5) on 2026-12-02 is 21:50 UTC on the 1st.
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2026-12-01T21:50:00Z")),
            ts("2026-12-02T04:00:00Z")
        );
        // The email has no window.
        assert_eq!(
            w.next_allowed(Channel::Email, ts("2026-12-01T21:50:00Z")),
            ts("2026-12-01T21:50:00Z")
        );
    }

    #[test]
    fn the_window_edges_are_start_inclusive_end_exclusive() {
        let w = almaty();
        let nine = ts("2026-12-02T04:00:00Z");
        assert_eq!(w.next_allowed(Channel::Sms, nine), nine);
        let before = ts("2026-12-02T03:59:59.999Z");
        assert_eq!(w.next_allowed(Channel::Sms, before), nine);
        let last = ts("2026-12-02T15:59:59.999Z");
        assert!(w.allows(Channel::Sms, last));
        // 21:00 sharp is outside: the next morning.
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2026-12-02T16:00:00Z")),
            ts("2026-12-03T04:00:00Z")
        );
    }

    #[test]
    fn around_midnight_the_next_start_is_the_same_morning() {
        let w = almaty();
        // 23:59:59 and 00:00 Almaty: both wait for 09:00 of the day that has just begun or begins.
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2026-12-01T18:59:59Z")),
            ts("2026-12-02T04:00:00Z")
        );
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2026-12-01T19:00:00Z")),
            ts("2026-12-02T04:00:00Z")
        );
    }

    #[test]
    fn the_2024_zone_change_moves_nine_oclock_by_an_hour_in_utc() {
        let w = almaty();
        // Before 2024-03-01 Almaty was UTC+6: 09:00 was 03:00 UTC.
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2024-02-20T20:00:00Z")),
            ts("2024-02-21T03:00:00Z")
        );
        // The night of the change (midnight +06 became 23:00 +05): 09:00 on March 1 is 04:00 UTC.
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2024-02-29T19:30:00Z")),
            ts("2024-03-01T04:00:00Z")
        );
        // A fixed +06 would have said 03:00 UTC, an hour early.
        assert_ne!(
            w.next_allowed(Channel::Sms, ts("2024-02-29T19:30:00Z")),
            ts("2024-03-01T03:00:00Z")
        );
    }

    #[test]
    fn a_window_across_midnight_wraps() {
        let w = SendWindows::new(
            TimeZone::UTC,
            "22:00-06:00".parse().unwrap(),
            Window::ALWAYS,
        );
        assert!(w.allows(Channel::Sms, ts("2026-12-01T23:00:00Z")));
        assert!(w.allows(Channel::Sms, ts("2026-12-02T05:59:00Z")));
        assert_eq!(
            w.next_allowed(Channel::Sms, ts("2026-12-02T12:00:00Z")),
            ts("2026-12-02T22:00:00Z")
        );
    }

    #[test]
    fn windows_parse_strictly() {
        assert_eq!("always".parse::<Window>().unwrap(), Window::ALWAYS);
        assert_eq!(
            "09:00-21:00".parse::<Window>().unwrap().to_string(),
            "09:00-21:00"
        );
        assert_eq!(
            " 08:30 - 20:15 ".parse::<Window>().unwrap().to_string(),
            "08:30-20:15"
        );
        for bad in [
            "",
            "9-21",
            "9:00-21:00",
            "09:00",
            "09:00-09:00",
            "25:00-26:00",
            "09:00-24:00",
            "nine-five",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad:?}");
        }
    }
}
