//! One file per pane; each draws from the `App` (its snapshot and view state) only.

pub mod detail;
pub mod functions;
pub mod header;
pub mod help;
pub mod tasks;
pub mod threads;
pub mod timeline;
pub mod workers;
