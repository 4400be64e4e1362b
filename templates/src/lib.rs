//! Caravan's consul-template-compatible renderer. Job files' `template` blocks use Go's
//! `text/template` syntax ([`parse`], [`exec`]) with consul-template's helper functions
//! ([`helpers`]) and data functions, which read through one [`DataSource`] and record each
//! [`Dependency`] so a watcher can re-render when one changes ([`render`]).
//!
//! ```
//! use caravan_templates::{render, Dependency, MapSource, RenderOptions};
//! let mut data = MapSource::new();
//! data.set(Dependency::Kv { key: "app/port".into(), dc: None, block: true }, "8080".into());
//! let out = render(r#"port={{ key "app/port" }}"#, &RenderOptions::default(), &data).unwrap();
//! assert_eq!(out.text, "port=8080");
//! ```

pub mod data;
pub mod error;
pub mod exec;
pub mod fmt;
mod helpers;
pub mod parse;
pub mod render;
mod sprig;

pub use data::{DataSource, Dependency, MapSource, SourceKind};
pub use error::TemplateError;
pub use exec::{ExecOptions, FuncHost, NoFuncs};
pub use parse::Template;
pub use render::{
    render, render_parsed, unavailable_functions, RenderOptions, Rendered, DEFAULT_DENYLIST,
};
