//! Structured forms: templates as versioned data, validation with errors per field, routing
//! inside a patient room with a status per recipient, print views and FHIR output.

pub mod fhir;
pub mod print;
mod service;
pub mod shipped;
pub mod template_check;
pub mod validate;

pub use service::FormService;
