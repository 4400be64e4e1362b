//! The job-file parser the CLI uses (`caravan_jobspec`), behind one name so commands do not
//! depend on where it lives.

pub use caravan_jobspec::{init_example, parse, VarInputs};
