//! A table of templates (consul-template's documented examples, rewritten) with data in and
//! text out, over a fake data source; and the error cases: positions, missing data, denied
//! and unavailable functions, the file sandbox.

use caravan_templates::{render, Dependency, MapSource, RenderOptions, Template};
use serde_json::json;

fn kv(key: &str) -> Dependency {
    Dependency::Kv {
        key: key.into(),
        dc: None,
        block: true,
    }
}

fn source() -> MapSource {
    let mut s = MapSource::new();
    s.set(kv("app/config"), json!("max_conns=10"));
    s.set(kv("app/csv"), json!("a,b,c"));
    s.set(kv("app/json"), json!(r#"{"name":"web","ports":[80,443]}"#));
    s.set(kv("app/absent"), json!(null));
    s.set(
        Dependency::KvList {
            prefix: "svc".into(),
            dc: None,
        },
        json!([
            {"Key": "svc/", "Value": ""},
            {"Key": "svc/web/port", "Value": "80"},
            {"Key": "svc/web/host", "Value": "w1"},
            {"Key": "svc/db/port", "Value": "5432"},
            {"Key": "svc/name", "Value": "shop"}
        ]),
    );
    s.set(
        Dependency::Service {
            name: "db".into(),
            tag: None,
            dc: None,
            passing: true,
        },
        json!([
            {"Name": "db", "Address": "10.0.0.1", "Port": 5432, "Tags": ["primary", "v1"]},
            {"Name": "db", "Address": "10.0.0.2", "Port": 5433, "Tags": ["v1"]}
        ]),
    );
    s.set(
        Dependency::Services { dc: None },
        json!({"db": ["v1"], "web": ["edge", "v2"]}),
    );
    s
}

fn opts() -> RenderOptions {
    RenderOptions {
        env: [("NOMAD_TASK_NAME".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn run(src: &str) -> Result<String, String> {
    let r = render(src, &opts(), &source()).map_err(|e| e.to_string())?;
    if !r.complete() {
        return Err(format!("missing {:?}", r.missing));
    }
    Ok(r.text)
}

#[test]
fn table_of_templates() {
    let cases: &[(&str, &str)] = &[
        // Go syntax.
        ("plain text", "plain text"),
        ("{{ 1 }}-{{ 2.5 }}-{{ \"s\" }}-{{ `r\\n` }}-{{ true }}", "1-2.5-s-r\\n-true"),
        ("a  {{- 1 -}}  b", "a1b"),
        ("a {{/* a comment */}}b", "a b"),
        ("a {{- /* trimmed */ -}} b", "ab"),
        ("{{ $x := 3 }}{{ $x }}{{ $x = 4 }}{{ $x }}", "34"),
        ("{{ if false }}A{{ else if eq 1 2 }}B{{ else if true }}C{{ else }}D{{ end }}", "C"),
        ("{{ with $v := \"x\" }}{{ . }}{{ $v }}{{ else }}none{{ end }}", "xx"),
        ("{{ with \"\" }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range $i, $e := split \",\" \"a,b\" }}{{ $i }}={{ $e }};{{ end }}", "0=a;1=b;"),
        ("{{ range split \",\" \"\" }}x{{ else }}none{{ end }}", "none"),
        ("{{ range $k, $v := parseJSON `{\"b\":2,\"a\":1}` }}{{ $k }}{{ $v }}{{ end }}", "a1b2"),
        ("{{ range $i := 5 }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}", "02"),
        ("{{ define \"T\" }}<{{ . }}>{{ end }}{{ template \"T\" \"x\" }}{{ template \"T\" 2 }}", "<x><2>"),
        ("{{ block \"B\" \"d\" }}[{{ . }}]{{ end }}", "[d]"),
        ("{{ printf \"%s-%05.1f-%x-%q-%v\" \"a\" 3.14159 255 \"q\" (split \",\" \"1,2\") }}", "a-003.1-ff-\"q\"-[1 2]"),
        ("{{ \"a\" | printf \"%s%s\" \"b\" }}", "ba"),
        ("{{ (parseJSON `{\"a\":{\"b\":7}}`).a.b }}", "7"),
        ("{{ and 1 0 }} {{ or 0 \"\" 3 }} {{ not 0 }}", "0 3 true"),
        ("{{ len \"abc\" }} {{ index (split \",\" \"x,y\") 1 }} {{ slice \"hello\" 1 3 }}", "3 y el"),
        ("{{ lt 1 2 }} {{ ge \"b\" \"a\" }} {{ ne 1 1 }} {{ eq 2 1 2 }}", "true true false true"),
        ("{{ html \"<a&b>\" }} {{ js \"it's\" }} {{ urlquery \"a b&c\" }}", "&lt;a&amp;b&gt; it\\'s a+b%26c"),
        ("{{ print \"a\" 1 2 \"b\" }}{{ println \"x\" 1 }}", "a1 2bx 1\n"),
        // consul-template helpers.
        ("{{ key \"app/config\" }}", "max_conns=10"),
        ("{{ keyOrDefault \"app/absent\" \"dflt\" }} {{ keyOrDefault \"app/config\" \"d\" }}", "dflt max_conns=10"),
        ("{{ keyExists \"app/absent\" }} {{ keyExists \"app/config\" }}", "false true"),
        ("{{ key \"app/csv\" | split \",\" | join \";\" }}", "a;b;c"),
        ("{{ with $d := key \"app/json\" | parseJSON }}{{ $d.name }}:{{ index $d.ports 1 }}{{ end }}", "web:443"),
        ("{{ range ls \"svc\" }}{{ .Key }}={{ .Value }} {{ end }}", "name=shop "),
        ("{{ range tree \"svc/\" }}{{ .Key }}={{ .Value }} {{ end }}", "web/port=80 web/host=w1 db/port=5432 name=shop "),
        ("{{ range $k, $pairs := tree \"svc\" | byKey }}{{ $k }}:{{ range $pairs }}{{ .Key }},{{ end }};{{ end }}", "db:port,;web:host,port,;"),
        ("{{ with tree \"svc\" | explode }}{{ .web.host }}/{{ .db.port }}{{ end }}", "w1/5432"),
        ("{{ range service \"db\" }}{{ .Address }}:{{ .Port }} {{ end }}", "10.0.0.1:5432 10.0.0.2:5433 "),
        ("{{ range $tag, $s := service \"db\" | byTag }}{{ $tag }}={{ len $s }} {{ end }}", "primary=1 v1=2 "),
        ("{{ range services }}{{ .Name }}:{{ join .Tags \",\" }} {{ end }}", "db:v1 web:edge,v2 "),
        ("{{ if service \"db\" | len | lt 1 }}many{{ end }}", "many"),
        ("{{ env \"NOMAD_TASK_NAME\" }} {{ envOrDefault \"NOPE\" \"d\" }}", "web d"),
        ("{{ toJSON (parseJSON `{\"a\":[1,2]}`) }}", "{\"a\":[1,2]}"),
        ("{{ toJSONPretty (parseJSON `{\"a\":1}`) }}", "{\n  \"a\": 1\n}"),
        ("{{ toJSON \"<a&b>\" }} {{ toUnescapedJSON \"<a&b>\" }}", "\"\\u003ca\\u0026b\\u003e\" \"<a&b>\""),
        ("{{ parseJSON `{\"b\":[1,2],\"a\":\"x\"}` | toYAML }}", "a: x\nb:\n- 1\n- 2"),
        ("{{ with parseYAML \"a: 1\\nb: [x, y]\" }}{{ .a }} {{ index .b 1 }}{{ end }}", "1 y"),
        ("{{ parseJSON `{\"a\":1,\"t\":{\"k\":\"v\"}}` | toTOML }}", "a = 1\n\n[t]\nk = \"v\""),
        ("{{ parseJSON `[1]` | toTOML }}", "ERR toTOML: the value must be a map"),
        ("{{ sockaddr \"GetPrivateIP\" }}", "ERR sockaddr needs go-sockaddr"),
        ("{{ parseBool \"true\" }} {{ parseInt \"-42\" | add 2 }} {{ parseFloat \"1.5\" }}", "true -40 1.5"),
        ("{{ trimSpace \"  x \" }}|{{ \"aXbX\" | replaceAll \"X\" \"-\" }}|{{ \"v1.2\" | regexReplaceAll `v(\\d)` \"V$1\" }}", "x|a-b-|V1.2"),
        ("{{ regexMatch `^\\d+$` \"123\" }} {{ \"FoO\" | toLower }} {{ toUpper \"a\" }} {{ toTitle \"hello world\" }}", "true foo A Hello World"),
        ("{{ $t := split \",\" \"a,b\" }}{{ $t | contains \"a\" }} {{ in $t \"z\" }} {{ $t | containsAll (split \",\" \"a,b\") }} {{ $t | containsAny (split \",\" \"z,b\") }}", "true false true true"),
        ("{{ base64Encode \"hi?>\" }} {{ base64Decode \"aGk=\" }} {{ base64URLEncode \"hi?>\" }}", "aGk/Pg== hi aGk_Pg=="),
        ("{{ sha256Hex \"abc\" }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("{{ md5sum \"abc\" }}", "900150983cd24fb0d6963f7d28e17f72"),
        ("{{ 5 | subtract 2 }} {{ multiply 3 4 }} {{ 10 | divide 4 }} {{ 10 | modulo 4 }} {{ minimum 3 9 }} {{ maximum 3 9 }} {{ add 1.5 1 }}", "3 12 2 2 3 9 2.5"),
    ];
    let mut failures = vec![];
    for (src, want) in cases {
        match run(src) {
            Ok(got) if got == *want => {}
            Err(e) if want.strip_prefix("ERR ").is_some_and(|w| e.contains(w)) => {}
            other => failures.push(format!("{src}\n   want {want:?}\n   got  {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn timestamp_formats() {
    let t = run("{{ timestamp }}").unwrap();
    assert_eq!(t.len(), 20, "{t}");
    assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    let y = run("{{ timestamp \"2006\" }}").unwrap();
    assert!(y.parse::<u32>().unwrap() >= 2024, "{y}");
    let u = run("{{ timestamp \"unix\" }}").unwrap();
    assert!(u.parse::<u64>().unwrap() > 1_700_000_000);
}

#[test]
fn custom_delimiters() {
    let o = RenderOptions {
        left_delimiter: "[[".into(),
        right_delimiter: "]]".into(),
        ..opts()
    };
    let r = render(
        "{{ not a template }} [[ key \"app/config\" ]] [[- \" x\" -]] [[/* c */]]",
        &o,
        &source(),
    )
    .unwrap();
    assert_eq!(r.text, "{{ not a template }} max_conns=10 x");
}

#[test]
fn dependencies_are_recorded_and_missing_data_reported() {
    let r = render(
        "{{ key \"app/config\" }}{{ key \"app/new\" }}{{ key \"app/absent\" }}{{ keyOrDefault \"app/other\" \"d\" }}{{ range service \"web\" }}{{ end }}{{ key \"app/config\" }}",
        &opts(),
        &source(),
    )
    .unwrap();
    let names: Vec<String> = r.deps.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        names,
        [
            "kv.block(app/config)",
            "kv.block(app/new)",
            "kv.block(app/absent)",
            "kv.get(app/other)",
            "health.service(web|passing)"
        ]
    );
    let missing: Vec<String> = r.missing.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        missing,
        [
            "kv.block(app/new)",
            "kv.block(app/absent)",
            "health.service(web|passing)"
        ]
    );
    assert!(!r.complete());
    // safeLs waits for a non-empty prefix; ls does not.
    let r = render("{{ ls \"empty\" }}", &opts(), &source()).unwrap();
    assert_eq!(r.missing.len(), 1);
    let mut s = source();
    s.set(
        Dependency::KvList {
            prefix: "empty".into(),
            dc: None,
        },
        json!([]),
    );
    assert!(render("{{ ls \"empty\" }}", &opts(), &s)
        .unwrap()
        .complete());
    assert!(!render("{{ safeLs \"empty\" }}", &opts(), &s)
        .unwrap()
        .complete());
    let r = render(
        "{{ key \"k@dc2\" }}{{ service \"tag.db@dc2\" }}",
        &opts(),
        &s,
    )
    .unwrap();
    assert_eq!(r.missing[0].to_string(), "kv.block(k@dc2)");
    assert_eq!(
        r.missing[1].to_string(),
        "health.service(tag.db@dc2|passing)"
    );
}

#[test]
fn unavailable_and_denied_functions_fail_with_the_feature_named() {
    for (src, needle) in [
        (
            "{{ with secret \"kv/x\" \"ttl\" }}{{ end }}",
            "secret: \"ttl\" is not a key=value pair",
        ),
        (
            "{{ range nodes }}{{ end }}",
            "nodes needs Consul catalog node queries",
        ),
        (
            "{{ plugin \"x\" }}",
            "disabled by the client's template function_denylist",
        ),
        ("{{ nosuch 1 }}", "function \"nosuch\" not defined"),
        (
            "{{ range nomadService 1 \"db\" }}{{ end }}",
            "nomadService: expected arguments <service> or <count> <key> <service>",
        ),
        (
            "{{ range nomadService \"x\" \"k\" \"db\" }}{{ end }}",
            "nomadService: expected integer for <count> argument",
        ),
    ] {
        let o = RenderOptions {
            denylist: vec!["plugin".into()],
            ..opts()
        };
        let e = render(src, &o, &source()).unwrap_err().to_string();
        assert!(e.contains(needle), "{src}: {e}");
    }
}

#[test]
fn errors_carry_line_and_column() {
    let e = Template::parse("t", "line1\n  {{ if .X }}\nno end").unwrap_err();
    assert_eq!(e.to_string(), "template: t:2:2: unexpected EOF in if");
    let e = Template::parse("t", "a\nb {{ .X ").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("template: t:2:2: unclosed action"),
        "{e}"
    );
    let e = Template::parse("t", "{{ end }}").unwrap_err();
    assert!(e.to_string().contains("unexpected {{end}}"), "{e}");
    let e = render("x\n\n  {{ index 1 2 }}", &opts(), &source()).unwrap_err();
    assert!(
        e.to_string().starts_with("template: out:3:5: executing"),
        "{e}"
    );
    for bad in [
        "{{ \"unterminated }}",
        "{{ ( 1 }}",
        "{{ 1 ) }}",
        "{{ else }}",
        "{{ range }}{{ end }}",
        "{{/* x }}",
    ] {
        assert!(Template::parse("t", bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn missing_keys_and_error_on_missing_key() {
    let src = "{{ with parseJSON `{\"a\":1}` }}{{ .b }}{{ end }}";
    assert_eq!(run(src).unwrap(), "<no value>");
    let o = RenderOptions {
        error_on_missing_key: true,
        ..opts()
    };
    let e = render(src, &o, &source()).unwrap_err().to_string();
    assert!(e.contains("map has no entry for key \"b\""), "{e}");
}

#[test]
fn file_is_sandboxed() {
    let dir = std::env::temp_dir().join(format!("caravan-tmpl-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("local")).unwrap();
    std::fs::write(dir.join("local/in.txt"), "inside").unwrap();
    let o = RenderOptions {
        file_root: Some(dir.clone()),
        ..opts()
    };
    let ok = render("{{ file \"local/in.txt\" }}", &o, &source()).unwrap();
    assert_eq!(ok.text, "inside");
    for bad in ["../../etc/passwd", "/etc/passwd", "local/../../x"] {
        let e = render(&format!("{{{{ file \"{bad}\" }}}}"), &o, &source())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sandbox"), "{bad}: {e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nomad_variables_render_wait_and_list() {
    let var = |path: &str, block: bool| Dependency::NomadVar {
        path: path.into(),
        namespace: None,
        block,
    };
    let mut s = MapSource::new();
    s.set(
        var("nomad/jobs/web", true),
        json!({"user": "admin", "port": "80"}),
    );
    s.set(var("absent", true), json!(null));
    s.set(
        Dependency::NomadVarList {
            prefix: "nomad/jobs".into(),
            namespace: None,
        },
        json!([{"Path": "nomad/jobs/web", "Namespace": "default"}]),
    );
    let o = opts();
    let r = render(
        "{{ with nomadVar \"nomad/jobs/web\" }}{{ .user }}:{{ .port }}{{ end }} \
         {{ range $k, $v := nomadVar \"nomad/jobs/web\" }}{{ $k }}={{ $v }};{{ end }} \
         {{ nomadVarExists \"nomad/jobs/web\" }} {{ nomadVarExists \"absent\" }} \
         {{ range nomadVarList \"nomad/jobs\" }}{{ .Path }}{{ end }}",
        &o,
        &s,
    )
    .unwrap();
    assert!(r.missing.is_empty(), "{:?}", r.missing);
    assert_eq!(
        r.text,
        "admin:80 port=80;user=admin; true false nomad/jobs/web"
    );
    // An absent variable holds the render back, named as consul-template names it.
    let r = render("{{ with nomadVar \"absent\" }}{{ .x }}{{ end }}", &o, &s).unwrap();
    assert_eq!(r.missing, vec![var("absent", true)]);
    assert_eq!(r.missing[0].to_string(), "nomad.var.block(absent)");
    let r = render("{{ nomadVar \"other@prod.global\" }}", &o, &s).unwrap();
    assert_eq!(r.missing[0].to_string(), "nomad.var.block(other@prod)");
}

#[test]
fn vault_secrets_render_wait_and_name_their_dependencies() {
    let read = Dependency::VaultRead {
        path: "secret/data/app".into(),
    };
    let write = Dependency::VaultWrite {
        path: "database/creds/ro".into(),
        data: vec![("ttl".into(), "1h".into())],
    };
    let list = Dependency::VaultList {
        path: "secret/metadata".into(),
    };
    let pki = Dependency::VaultPki {
        path: "pki/issue/web".into(),
        data: vec![("common_name".into(), "web.example.com".into())],
    };
    let o = opts();
    let src = "{{ with secret \"/secret/data/app\" }}{{ .Data.data.password }}\
               /{{ .Data.metadata.version }}{{ end }} \
               {{ with secret \"database/creds/ro\" \"ttl=1h\" }}{{ .Data.username }} {{ .LeaseDuration }}{{ end }} \
               {{ range secrets \"secret/metadata/\" }}{{ . }},{{ end }} \
               {{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" }}{{ .Cert }}{{ .Key }}{{ end }}";
    // Nothing fetched yet: every Vault dependency holds the render back.
    let r = render(src, &o, &MapSource::new()).unwrap();
    assert_eq!(
        r.missing,
        vec![read.clone(), write.clone(), list.clone(), pki.clone()]
    );
    assert_eq!(
        r.missing.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        [
            "vault.read(secret/data/app)",
            "vault.write(database/creds/ro -> ttl)",
            "vault.list(secret/metadata)",
            "vault.pki(pki/issue/web -> common_name)",
        ]
    );
    let mut s = MapSource::new();
    s.set(
        read,
        json!({"LeaseID": "", "LeaseDuration": 0, "Renewable": false,
               "Data": {"data": {"password": "hunter2"}, "metadata": {"version": 3}}}),
    );
    s.set(
        write,
        json!({"LeaseID": "database/creds/ro/abc", "LeaseDuration": 3600, "Renewable": true,
               "Data": {"username": "v-ro-1", "password": "p"}}),
    );
    s.set(list, json!(["app", "db"]));
    s.set(
        pki,
        json!({"Cert": "C", "Key": "K", "CA": "A", "CAChain": ["A"]}),
    );
    let r = render(src, &o, &s).unwrap();
    assert!(r.complete(), "{:?}", r.missing);
    assert_eq!(r.text, "hunter2/3 v-ro-1 3600 app,db, CK");
    assert!(r
        .deps
        .iter()
        .all(|d| d.kind() == caravan_templates::SourceKind::Vault));
    let e = render("{{ secret \"\" }}", &o, &s).unwrap_err().to_string();
    assert!(e.contains("secret: the Vault path is empty"), "{e}");
}
