//! The IMS event model: envelope, catalogue of event types, typed bodies.
