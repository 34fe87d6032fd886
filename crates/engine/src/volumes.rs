//! Named and anonymous volumes: the model's store (`pelagos_model::volumes`), which the
//! monitor also uses to make and fill them at a container's first start.

pub use pelagos_model::volumes::*;
