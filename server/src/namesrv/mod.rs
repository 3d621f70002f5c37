//! The name server (design.md §9, protocol.md §2.14): brokers register their topics with it,
//! clients ask it for routes. Embedded in the broker by default, or run alone with
//! `ringmq-server namesrv`.
//!
//! [`route_table`] holds the state (pure, time passed in), [`processor`] turns requests into
//! responses, [`server`] runs both on a thread of its own with one compio runtime and one
//! listener. The name server keeps nothing on disk: after a restart it knows what the
//! brokers' next registrations (every 30 s) tell it.

pub mod processor;
pub mod route_table;
pub mod server;

pub use route_table::{
    BrokerRegistration, RegistrationAnswer, RouteTable, DEFAULT_BROKER_TIMEOUT_MS,
};
pub use server::{start, NameServerHandle, NamesrvConfig, NamesrvError};
