//! What the engine keeps for ticketing systems: the configured systems, when each was
//! last polled, and webhook deliveries refused but not yet on the ledger.

use writ_itsm::TicketSystems;

use crate::{polling, rejections};

#[derive(Default)]
pub(crate) struct ItsmSide {
    /// Configured ticketing systems (empty unless `[[itsm]]` is set).
    pub(crate) systems: TicketSystems,
    pub(crate) polls: polling::PollState,
    pub(crate) rejections: rejections::Rejections,
}
