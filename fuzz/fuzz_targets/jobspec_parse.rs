//! Feeds arbitrary bytes to the job file parser as HCL2 (and HCL's JSON syntax) and as an API
//! JSON job, and validates whatever parses, as a server does with a submitted job: none of it
//! may panic, whatever the input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // No filesystem base directory: `file()` and friends fail cleanly, as on a server.
    let vars = caravan_jobspec::VarInputs::default();
    if let Ok(mut job) = caravan_jobspec::parse_hcl(src, "fuzz.nomad.hcl", &vars) {
        job.canonicalize();
        let _ = job.validate();
    }
    if let Ok(job) = caravan_jobspec::parse_json(src) {
        let _ = job.validate();
    }
});
