//! The one clock that reads the system's time. The domain only ever receives a
//! `Clock`, so everything below the engine runs the same against a manual clock.

use writ_domain::{Clock, Timestamp};

/// The system's clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}
