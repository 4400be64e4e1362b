//! Nomad ACL policies for Caravan: [`parse`] reads a policy's rules (HCL v1 or JSON, as Nomad's
//! `acl.Parse` does) into a [`Policy`], and [`Acl`] merges a token's policies the way Nomad's
//! `acl.NewACL` does and answers "may this token do X".
//!
//! Semantics follow hashicorp/nomad `acl/policy.go` and `acl/acl.go`: the `policy = "..."`
//! shorthand expands into capabilities, capabilities of several policies are unioned and `deny`
//! always wins, levels (`agent`, `node`, ...) merge to the most privileged unless one is `deny`,
//! and a name with no exact rule uses the closest matching `*` glob.

mod acl;
pub mod capability;
pub mod glob;
mod policy;

pub use acl::{Acl, AclClaim};
pub use policy::{
    parse, parse_lenient, CapabilityRule, HostVolumeRule, NamedRule, NamespaceRule, NodePoolRule,
    Policy, VariablePathRule,
};

use std::fmt;

/// Why a policy's rules were refused, with the position (1-based line and column) of the
/// offending text where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Failed to parse ACL policy: ")?;
        match (self.line, self.column) {
            (Some(line), Some(col)) => write!(f, "{line}:{col}: ")?,
            (Some(line), None) => write!(f, "{line}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

impl PolicyError {
    /// An error at a position in the rules.
    pub(crate) fn at(pos: &caravan_hcl1::Pos, message: impl Into<String>) -> Self {
        PolicyError {
            line: Some(pos.line),
            column: Some(pos.col),
            message: message.into(),
        }
    }

    /// An error about the rules as a whole.
    pub(crate) fn whole(message: impl Into<String>) -> Self {
        PolicyError {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl From<caravan_hcl1::Error> for PolicyError {
    fn from(e: caravan_hcl1::Error) -> Self {
        PolicyError {
            line: e.pos.as_ref().map(|p| p.line),
            column: e.pos.as_ref().map(|p| p.col),
            message: e.msg,
        }
    }
}

#[cfg(test)]
mod tests;
