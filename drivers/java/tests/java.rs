//! End-to-end tests of the java driver against the host's JDK and kernel: a tiny program is
//! compiled with `javac` at test time and run by `class`/`class_path` and, packed with
//! `jar`, by `jar_path`, isolated by the exec driver (user nobody, own PID namespace). They
//! need root, cgroups, `javac`, `jar` and `java`; without them each prints why it SKIPPED.

use caravan_driver::procfs;
use caravan_driver::{Driver, TaskConfig, TaskState};
use caravan_driver_exec::ExecDriverConfig;
use caravan_driver_java::JavaDriver;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The cgroup parent the tests use, apart from a real client's.
const PARENT: &str = "caravan-test-java";

/// The program: prints what the assertions check, sleeps when asked, exits with args[0].
const HELLO: &str = r#"
import java.nio.file.*;
import java.util.*;

public class Hello {
    public static void main(String[] args) throws Exception {
        System.out.println("greeting=" + System.getProperty("greeting"));
        System.out.println("args=" + String.join("|", args));
        System.out.println("user=" + System.getProperty("user.name"));
        for (String l : Files.readAllLines(Paths.get("/proc/self/status"))) {
            if (l.startsWith("Uid:")) System.out.println("uid=" + l.split("\\s+")[1]);
        }
        List<Long> pids = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Paths.get("/proc"))) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.matches("\\d+")) pids.add(Long.parseLong(n));
            }
        }
        Collections.sort(pids);
        System.out.println("mypid=" + ProcessHandle.current().pid());
        System.out.println("pids=" + pids);
        System.out.flush();
        if (args.length > 1 && args[1].equals("sleep")) Thread.sleep(600_000);
        System.exit(args.length > 0 ? Integer.parseInt(args[0]) : 0);
    }
}
"#;

fn tool_missing(name: &str) -> bool {
    Command::new(name)
        .arg("-version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
}

/// True (after printing why) when the test cannot run here.
fn skip(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: the java driver needs root (run the tests as root)");
        return true;
    }
    for tool in ["java", "javac"] {
        if tool_missing(tool) {
            eprintln!("SKIPPED {test}: `{tool} -version` does not run; install a JDK");
            return true;
        }
    }
    if Command::new("jar").arg("--help").output().is_err() {
        eprintln!("SKIPPED {test}: the `jar` tool is missing; install a JDK");
        return true;
    }
    if driver().exec_driver().cgroup_layout().is_none() {
        eprintln!("SKIPPED {test}: no cgroup hierarchy under /sys/fs/cgroup");
        return true;
    }
    false
}

fn driver() -> JavaDriver {
    JavaDriver::new(ExecDriverConfig {
        cgroup_parent: PARENT.to_string(),
        ..Default::default()
    })
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        procfs::now_nanos() % 1_000_000_000
    )
}

/// An alloc dir like the client's, with `Hello.class` compiled into `t/local/classes` and
/// packed into `t/local/app.jar` (main class `Hello`).
fn alloc_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("caravan-java-{}", unique(name)));
    for sub in [
        "alloc/data",
        "alloc/logs",
        "alloc/tmp",
        "t/local/classes",
        "t/secrets",
        "t/tmp",
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Hello.java"), HELLO).unwrap();
    let classes = d.join("t/local/classes");
    run(Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(src.join("Hello.java")));
    run(Command::new("jar")
        .arg("cfe")
        .arg(d.join("t/local/app.jar"))
        .arg("Hello")
        .arg("-C")
        .arg(&classes)
        .arg("."));
    d
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("run tool");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn task(dir: &Path, name: &str, config: Value) -> TaskConfig {
    let alloc_id = unique(name);
    let task_dir = dir.join("t");
    TaskConfig {
        id: format!("{alloc_id}/t"),
        name: "t".into(),
        alloc_id,
        job_name: "job".into(),
        task_group: "group".into(),
        env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        alloc_dir: dir.join("alloc"),
        task_dir: task_dir.clone(),
        local_dir: task_dir.join("local"),
        secrets_dir: task_dir.join("secrets"),
        stdout_path: dir.join("out.txt"),
        stderr_path: dir.join("err.txt"),
        driver_config: config.as_object().cloned().unwrap(),
        ..Default::default()
    }
}

fn out(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("out.txt")).unwrap_or_default()
}

fn err(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("err.txt")).unwrap_or_default()
}

/// The value after `key=` on its own line of the task's output.
fn field<'a>(o: &'a str, key: &str) -> &'a str {
    o.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= line in output:\n{o}"))
}

/// Checks the isolation the program reports: nobody, PID 1 of its own namespace, no
/// host PIDs.
fn assert_isolated(o: &str) {
    assert_eq!(field(o, "user"), "nobody", "runs as nobody by default");
    assert_eq!(field(o, "uid"), "65534");
    assert_eq!(field(o, "mypid"), "1", "the JVM is PID 1 of its namespace");
    let pids: Vec<i64> = field(o, "pids")
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();
    assert!(
        pids == vec![1],
        "only the task's own process is visible, got {pids:?}"
    );
}

async fn run_to_exit(d: &JavaDriver, cfg: TaskConfig, dir: &Path) -> (i32, String) {
    let h = d.start(cfg).await.expect("start java task");
    assert_eq!(h.driver, "java");
    let res = tokio::time::timeout(Duration::from_secs(90), d.wait(&h.task_id))
        .await
        .expect("java task did not finish within 90 s")
        .unwrap();
    let o = out(dir);
    println!("task output:\n{o}\nstderr:\n{}", err(dir));
    assert!(res.err.is_none(), "{res:?}");
    d.destroy(&h.task_id, false).await.unwrap();
    assert!(
        !dir.join("t/usr").exists(),
        "the chroot's mount points are removed on destroy"
    );
    (res.exit_code, o)
}

#[tokio::test]
async fn class_and_class_path_run_isolated_as_nobody() {
    if skip("class_and_class_path_run_isolated_as_nobody") {
        return;
    }
    let dir = alloc_dir("class");
    let cfg = task(
        &dir,
        "class",
        json!({"class": "Hello", "class_path": "/local/classes", "args": ["0", "b"]}),
    );
    let (code, o) = run_to_exit(&driver(), cfg, &dir).await;
    assert_eq!(code, 0);
    assert_eq!(field(&o, "greeting"), "null");
    assert_eq!(field(&o, "args"), "0|b");
    assert_isolated(&o);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn jar_path_with_jvm_options_and_args() {
    if skip("jar_path_with_jvm_options_and_args") {
        return;
    }
    let dir = alloc_dir("jar");
    let cfg = task(
        &dir,
        "jar",
        json!({
            "jar_path": "local/app.jar",
            "jvm_options": ["-Dgreeting=hi", "-Xmx64m"],
            "args": ["7", "two words"]
        }),
    );
    let (code, o) = run_to_exit(&driver(), cfg, &dir).await;
    assert_eq!(code, 7, "the program's exit code is reported");
    assert_eq!(field(&o, "greeting"), "hi", "jvm_options reach the JVM");
    assert_eq!(field(&o, "args"), "7|two words");
    assert_isolated(&o);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn stop_and_recover_a_running_java_task() {
    if skip("stop_and_recover_a_running_java_task") {
        return;
    }
    let dir = alloc_dir("recover");
    let cfg = task(
        &dir,
        "recover",
        json!({"jar_path": "/local/app.jar", "args": ["0", "sleep"]}),
    );
    let d = driver();
    let h = d.start(cfg).await.unwrap();
    // Wait until the JVM printed its report, so it is well up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out(&dir).contains("pids=") {
        assert!(Instant::now() < deadline, "no output: {}", err(&dir));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new driver (a restarted agent) takes the task over from its handle.
    let d2 = driver();
    d2.recover(h.clone()).await.unwrap();
    assert_eq!(
        d2.inspect(&h.task_id).await.unwrap().state,
        TaskState::Running
    );
    let r = d2
        .exec(
            &h.task_id,
            vec!["/bin/cat".into(), "/proc/1/cmdline".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let cmdline = String::from_utf8_lossy(&r.stdout).replace('\0', " ");
    assert!(cmdline.contains("-jar /local/app.jar"), "{cmdline}");
    d2.stop(&h.task_id, Duration::from_secs(5), "SIGTERM")
        .await
        .unwrap();
    // Both drivers live in this test process, so either one's watcher may reap the JVM;
    // that one reports the signal, the other sees the process gone with its status unknown.
    let mut results = Vec::new();
    for d in [&d, &d2] {
        let res = tokio::time::timeout(Duration::from_secs(20), d.wait(&h.task_id))
            .await
            .unwrap()
            .unwrap();
        println!("after stop: {res:?}");
        results.push(res);
    }
    // The JVM runs its shutdown on SIGTERM and exits 128+15; SIGKILL only if it hung.
    assert!(
        results
            .iter()
            .any(|r| r.exit_code == 128 + 15 || r.signal == 15 || r.signal == 9),
        "stopped by the signal: {results:?}"
    );
    assert_eq!(
        d2.inspect(&h.task_id).await.unwrap().state,
        TaskState::Exited
    );
    d2.destroy(&h.task_id, false).await.unwrap();
    assert!(!procfs::is_alive(h.pid, h.process_start_ticks));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    // Parsing happens before anything is set up, so this runs without root too.
    let dir = std::env::temp_dir().join(unique("caravan-java-bad"));
    let d = driver();
    let cases = [
        (json!({"jvm_options": ["-Xmx64m"]}), "needs \"jar_path\""),
        (
            json!({"jar_path": "../../../etc/secret.jar"}),
            "jar_path \"../../../etc/secret.jar\" escapes the task directory",
        ),
        (
            json!({"jar_path": "local/app.jar", "command": "/bin/sh"}),
            "unknown java config option \"command\"",
        ),
    ];
    for (config, want) in cases {
        let e = d
            .start(task(&dir, "bad", config.clone()))
            .await
            .expect_err("bad config must be refused");
        assert!(e.to_string().contains(want), "{config}: {e}");
    }
    assert!(!dir.exists(), "nothing was created for refused tasks");
}

#[tokio::test]
async fn fingerprint_reports_the_hosts_java() {
    if skip("fingerprint_reports_the_hosts_java") {
        return;
    }
    let o = Command::new("java").arg("-version").output().unwrap();
    let want = caravan_driver_java::parse_java_version(&String::from_utf8_lossy(&o.stderr))
        .expect("parse the host's java -version");
    let d = driver();
    // The probe runs in the background; later fingerprints pick up its result.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fp = loop {
        let fp = d.fingerprint().await;
        if fp.detected || Instant::now() > deadline {
            break fp;
        }
        println!("not yet: {}", fp.health_description);
    };
    assert!(fp.detected && fp.healthy, "{fp:?}");
    assert_eq!(
        fp.attributes.get("driver.java").map(String::as_str),
        Some("1")
    );
    assert_eq!(fp.attributes["driver.java.version"], want.version);
    assert_eq!(fp.attributes["driver.java.runtime"], want.runtime);
    assert_eq!(fp.attributes["driver.java.vm"], want.vm);
}

#[tokio::test]
async fn interactive_exec_runs_inside_the_java_task_with_a_tty() {
    use caravan_driver::{ExecInput, ExecOutput, ExecStreamIo};
    if skip("interactive_exec_runs_inside_the_java_task_with_a_tty") {
        return;
    }
    let dir = alloc_dir("exec-stream");
    let cfg = task(
        &dir,
        "exec-stream",
        json!({"jar_path": "/local/app.jar", "args": ["0", "sleep"]}),
    );
    let d = driver();
    let h = d.start(cfg).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out(&dir).contains("pids=") {
        assert!(Instant::now() < deadline, "no output: {}", err(&dir));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (tx, mut rx, io) = ExecStreamIo::channels(16);
    let feeder = tokio::spawn(async move {
        tx.send(ExecInput::Resize {
            height: 19,
            width: 77,
        })
        .await
        .unwrap();
        tx.send(ExecInput::Stdin(b"go\n".to_vec())).await.unwrap();
        // Open until the command is done: closing the input kills it.
        tx.closed().await;
    });
    let script = "test -t 0 && echo is-a-tty; read x; stty size; id -u; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 6";
    let code = tokio::time::timeout(
        Duration::from_secs(30),
        d.exec_streaming(
            &h.task_id,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            true,
            io,
        ),
    )
    .await
    .expect("the exec ends")
    .expect("exec works");
    feeder.abort();
    let mut o = Vec::new();
    while let Some(ExecOutput::Stdout(b) | ExecOutput::Stderr(b)) = rx.recv().await {
        o.extend(b);
    }
    let o = String::from_utf8_lossy(&o);
    assert_eq!(code, 6, "{o}");
    assert!(o.contains("is-a-tty"), "{o}");
    assert!(o.contains("19 77"), "{o}");
    assert!(o.contains("65534"), "runs as the task's user: {o}");
    assert!(o.contains("-jar /local/app.jar"), "PID 1 is the JVM: {o}");
    d.destroy(&h.task_id, true).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
