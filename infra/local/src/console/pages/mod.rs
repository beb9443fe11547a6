//! One file per page; [`shell`] is the frame they share.

pub mod alerts;
pub mod audit;
pub mod bulk;
pub mod find;
pub mod order;
pub mod orders;
pub mod overview;
pub mod queues;
pub mod sales;
pub mod shell;
pub mod simulators;
