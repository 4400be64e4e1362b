//! The `sprig_*` functions: a table of templates (Sprig's documented examples, rewritten) with
//! the text Sprig gives, then the error cases (argument counts and types, functions left out,
//! the denylist) and the non-repeatable functions checked by shape.

use caravan_templates::{render, Dependency, MapSource, RenderOptions};
use serde_json::json;

fn source() -> MapSource {
    let mut s = MapSource::new();
    s.set(
        Dependency::Kv {
            key: "app/name".into(),
            dc: None,
            block: true,
        },
        json!("pre-web"),
    );
    s
}

fn run(src: &str) -> Result<String, String> {
    render(src, &RenderOptions::default(), &source())
        .map(|r| r.text)
        .map_err(|e| e.to_string())
}

#[test]
fn sprig_table() {
    let cases: &[(&str, &str)] = &[
        // Strings, with Sprig's argument order (the subject last, so pipelines read well).
        (r#"{{ sprig_trim "   hello    " }}"#, "hello"),
        (r#"{{ sprig_trimAll "$" "$5.00$" }}"#, "5.00"),
        (r#"{{ sprig_trimSuffix "-" "hello-" }}"#, "hello"),
        (r#"{{ sprig_trimPrefix "-" "-hello" }}"#, "hello"),
        (r#"{{ key "app/name" | sprig_trimPrefix "pre-" }}"#, "web"),
        (r#"{{ key "app/name" | sprig_upper }}"#, "PRE-WEB"),
        (r#"{{ sprig_lower "HELLO" }}"#, "hello"),
        (
            r#"{{ sprig_title "hello world-wide" }}"#,
            "Hello World-Wide",
        ),
        (r#"{{ sprig_title "snake_case x.y" }}"#, "Snake_case X.Y"),
        (r#"{{ sprig_untitle "Hello World" }}"#, "hello world"),
        (r#"{{ sprig_repeat 3 "hello" }}"#, "hellohellohello"),
        (r#"{{ sprig_substr 0 5 "hello world" }}"#, "hello"),
        (r#"{{ sprig_substr 6 -1 "hello world" }}"#, "world"),
        (r#"{{ sprig_nospace "hello w o r l d" }}"#, "helloworld"),
        (r#"{{ sprig_trunc 5 "hello world" }}"#, "hello"),
        (r#"{{ sprig_trunc -5 "hello world" }}"#, "world"),
        (r#"{{ sprig_abbrev 5 "hello world" }}"#, "he..."),
        (r#"{{ sprig_abbrev 20 "hello world" }}"#, "hello world"),
        (r#"{{ sprig_initials "First Try" }}"#, "FT"),
        (r#"{{ sprig_swapcase "This Is A.Test" }}"#, "tHIS iS a.tEST"),
        (r#"{{ sprig_snakecase "FirstName" }}"#, "first_name"),
        (r#"{{ sprig_snakecase "HTTPServer" }}"#, "http_server"),
        (r#"{{ sprig_snakecase "NoHTTPS" }}"#, "no_https"),
        (r#"{{ sprig_snakecase "GO_PATH" }}"#, "go_path"),
        (r#"{{ sprig_snakecase "GO PATH" }}"#, "go_path"),
        (r#"{{ sprig_snakecase "http2xx" }}"#, "http_2xx"),
        (r#"{{ sprig_snakecase "HTTP20xOK" }}"#, "http_20x_ok"),
        (r#"{{ sprig_snakecase "Bld4Floor3rd" }}"#, "bld4_floor_3rd"),
        (r#"{{ sprig_kebabcase "FirstName" }}"#, "first-name"),
        (r#"{{ sprig_kebabcase "GO-PATH" }}"#, "go-path"),
        (r#"{{ sprig_camelcase "http_server" }}"#, "HttpServer"),
        (r#"{{ sprig_camelcase "some words" }}"#, "SomeWords"),
        (
            r#"{{ sprig_camelcase "_complex__case_" }}"#,
            "_Complex_Case_",
        ),
        (r#"{{ sprig_wrap 5 "Hello World" }}"#, "Hello\nWorld"),
        (
            r#"{{ sprig_wrapWith 5 "\t" "Hello World" }}"#,
            "Hello\tWorld",
        ),
        (r#"{{ sprig_contains "cat" "catch" }}"#, "true"),
        (r#"{{ sprig_hasPrefix "cat" "catch" }}"#, "true"),
        (r#"{{ sprig_hasSuffix "cat" "catch" }}"#, "false"),
        (r#"{{ sprig_quote "a\"b" 1 nil }}"#, r#""a\"b" "1""#),
        (r#"{{ sprig_squote "a" 2 }}"#, "'a' '2'"),
        (
            r#"{{ sprig_cat "hello" "beautiful" nil "world" 3 }}"#,
            "hello beautiful world 3",
        ),
        ("{{ sprig_indent 4 \"a\\nb\" }}", "    a\n    b"),
        ("x:{{ sprig_nindent 2 \"a\\nb\" }}", "x:\n  a\n  b"),
        (
            r#"{{ "I Am Henry VIII" | sprig_replace " " "-" }}"#,
            "I-Am-Henry-VIII",
        ),
        (
            r#"{{ sprig_plural "one anchovy" "many anchovies" 2 }}"#,
            "many anchovies",
        ),
        (
            r#"{{ sprig_plural "one anchovy" "many anchovies" 1 }}"#,
            "one anchovy",
        ),
        (
            r#"{{ sprig_splitList "$" "foo$bar$baz" }}"#,
            "[foo bar baz]",
        ),
        (
            r#"{{ $a := sprig_split "$" "foo$bar$baz" }}{{ $a._1 }}"#,
            "bar",
        ),
        (
            r#"{{ $a := sprig_splitn "$" 2 "foo$bar$baz" }}{{ $a._1 }}"#,
            "bar$baz",
        ),
        (
            r#"{{ sprig_list "hello" "world" | sprig_join "_" }}"#,
            "hello_world",
        ),
        (r#"{{ sprig_list 1 nil 2 | sprig_join "+" }}"#, "1+2"),
        (
            r#"{{ sprig_list "c" "a" "b" | sprig_sortAlpha }}"#,
            "[a b c]",
        ),
        (
            r#"{{ sprig_toString 5 }}|{{ sprig_toStrings (sprig_list 1 "a") }}"#,
            "5|[1 a]",
        ),
        // Defaults and JSON.
        (r#"{{ .missing | sprig_default "foo" }}"#, "foo"),
        (r#"{{ "" | sprig_default "foo" }}"#, "foo"),
        (r#"{{ 0 | sprig_default 5 }}"#, "5"),
        (r#"{{ "bar" | sprig_default "foo" }}"#, "bar"),
        (
            r#"{{ sprig_empty "" }} {{ sprig_empty 0 }} {{ sprig_empty (sprig_list) }} {{ sprig_empty "x" }}"#,
            "true true true false",
        ),
        (r#"{{ sprig_coalesce 0 "" "x" "y" }}"#, "x"),
        (
            r#"{{ sprig_all 1 "a" }} {{ sprig_any 0 "" }}"#,
            "true false",
        ),
        (
            r#"{{ sprig_ternary "yes" "no" true }} {{ false | sprig_ternary "a" "b" }}"#,
            "yes b",
        ),
        (
            r#"{{ sprig_dict "a" "<b>" "n" 1 | sprig_toJson }}"#,
            r#"{"a":"\u003cb\u003e","n":1}"#,
        ),
        (
            r#"{{ sprig_dict "a" "<b>" | sprig_toRawJson }}"#,
            r#"{"a":"<b>"}"#,
        ),
        (
            r#"{{ sprig_dict "a" 1 | sprig_toPrettyJson }}"#,
            "{\n  \"a\": 1\n}",
        ),
        (r#"{{ (sprig_fromJson "{\"a\":[1,2]}").a }}"#, "[1 2]"),
        (r#"{{ sprig_fromJson "not json" }}"#, "<no value>"),
        // Lists.
        (
            r#"{{ $l := sprig_list 1 2 3 }}{{ sprig_first $l }} {{ sprig_rest $l }} {{ sprig_last $l }} {{ sprig_initial $l }}"#,
            "1 [2 3] 3 [1 2]",
        ),
        (r#"{{ sprig_first (sprig_list) }}"#, "<no value>"),
        (
            r#"{{ sprig_append (sprig_list 1 2) 3 }} {{ sprig_prepend (sprig_list 1 2) 0 }}"#,
            "[1 2 3] [0 1 2]",
        ),
        (
            r#"{{ sprig_concat (sprig_list 1 2) (sprig_list 3) }}"#,
            "[1 2 3]",
        ),
        (
            r#"{{ sprig_reverse (sprig_list 1 2 3) }} {{ sprig_uniq (sprig_list 1 1 2 1) }}"#,
            "[3 2 1] [1 2]",
        ),
        (
            r#"{{ sprig_without (sprig_list 1 2 3 2) 2 }} {{ sprig_has 2 (sprig_list 1 2) }} {{ sprig_has 2 nil }}"#,
            "[1 3] true false",
        ),
        (
            r#"{{ sprig_compact (sprig_list 1 "" 0 "a" false) }}"#,
            "[1 a]",
        ),
        (
            r#"{{ sprig_slice (sprig_list 1 2 3 4) 1 3 }} {{ sprig_slice (sprig_list 1 2 3 4) 2 }}"#,
            "[2 3] [3 4]",
        ),
        (r#"{{ sprig_chunk 2 (sprig_list 1 2 3) }}"#, "[[1 2] [3]]"),
        (r#"{{ range sprig_until 3 }}{{ . }},{{ end }}"#, "0,1,2,"),
        (r#"{{ sprig_untilStep 0 10 4 }}"#, "[0 4 8]"),
        // Dictionaries.
        (
            r#"{{ $d := sprig_dict "name1" "value1" "name2" "value2" }}{{ sprig_get $d "name1" }}[{{ sprig_get $d "nope" }}]"#,
            "value1[]",
        ),
        (
            r#"{{ $d := sprig_dict }}{{ $_ := sprig_set $d "k" "v" }}{{ $d.k }}"#,
            "v",
        ),
        (
            r#"{{ $d := sprig_dict "in" (sprig_dict) }}{{ $_ := sprig_set $d.in "k" 1 }}{{ $d.in.k }}"#,
            "1",
        ),
        (
            r#"{{ $d := sprig_dict "a" 1 "b" 2 }}{{ $_ := sprig_unset $d "a" }}{{ $d }} {{ sprig_hasKey $d "b" }}"#,
            "map[b:2] true",
        ),
        (
            r#"{{ sprig_pluck "a" (sprig_dict "a" 1) (sprig_dict "b" 2) (sprig_dict "a" 3) }}"#,
            "[1 3]",
        ),
        (
            r#"{{ sprig_keys (sprig_dict "b" 1 "a" 2) | sprig_sortAlpha }} {{ sprig_values (sprig_dict "a" 1) }}"#,
            "[a b] [1]",
        ),
        (
            r#"{{ $d := sprig_dict "a" 1 "b" 2 "c" 3 }}{{ sprig_pick $d "a" "c" }} {{ sprig_omit $d "a" "c" }}"#,
            "map[a:1 c:3] map[b:2]",
        ),
        (
            r#"{{ $dst := sprig_dict "a" 1 "b" "" "n" (sprig_dict "x" 1) }}{{ $src := sprig_dict "a" 9 "b" 2 "c" 3 "n" (sprig_dict "x" 5 "y" 6) }}{{ $_ := sprig_merge $dst $src }}{{ sprig_toJson $dst }}"#,
            r#"{"a":1,"b":2,"c":3,"n":{"x":1,"y":6}}"#,
        ),
        (
            r#"{{ sprig_mergeOverwrite (sprig_dict "a" 1 "n" (sprig_dict "x" 1)) (sprig_dict "a" 2 "n" (sprig_dict "y" 2)) | sprig_toJson }}"#,
            r#"{"a":2,"n":{"x":1,"y":2}}"#,
        ),
        (
            r#"{{ sprig_dig "a" "b" "def" (sprig_dict "a" (sprig_dict "b" "x")) }} {{ sprig_dig "a" "z" "def" (sprig_dict "a" (sprig_dict)) }}"#,
            "x def",
        ),
        // Numbers: spf13/cast conversions (junk is 0), integer results.
        (
            r#"{{ sprig_add 1 2 3 }} {{ sprig_add1 1 }} {{ sprig_sub 5 3 }} {{ sprig_div 7 2 }} {{ sprig_mod 7 2 }} {{ sprig_mul 2 3 4 }}"#,
            "6 2 2 3 1 24",
        ),
        (
            r#"{{ sprig_add "3" 4 }} {{ sprig_add 1.9 1 }} {{ sprig_int "12abc" }} {{ sprig_int64 "0x10" }} {{ sprig_int "3.0" }}"#,
            "7 2 0 16 3",
        ),
        (
            r#"{{ sprig_atoi "42" }} {{ sprig_atoi "4x" }} {{ sprig_float64 "1.5" }} {{ sprig_toDecimal "0777" }}"#,
            "42 0 1.5 511",
        ),
        (
            r#"{{ sprig_max 1 5 3 }} {{ sprig_min 4 2 8 }} {{ sprig_maxf 1 2.5 }} {{ sprig_minf 1.5 2 }}"#,
            "5 2 2.5 1.5",
        ),
        (
            r#"{{ sprig_floor 1.5 }} {{ sprig_ceil 1.2 }} {{ sprig_round 123.555555 3 }} {{ sprig_round 1.4 0 }}"#,
            "1 2 123.556 1",
        ),
        (
            r#"{{ sprig_seq 5 }}|{{ sprig_seq 2 -2 }}|{{ sprig_seq 0 2 10 }}|{{ sprig_seq 0 -2 -5 }}|{{ sprig_seq 0 2 -1 }}"#,
            "1 2 3 4 5|2 1 0 -1 -2|0 2 4 6 8 10|0 -2 -4|",
        ),
        // Encodings and hashes.
        (
            r#"{{ sprig_b64enc "hello" }} {{ sprig_b64dec "aGVsbG8=" }}"#,
            "aGVsbG8= hello",
        ),
        (
            r#"{{ sprig_b32enc "hello" }} {{ sprig_b32dec "NBSWY3DP" }}"#,
            "NBSWY3DP hello",
        ),
        (
            r#"{{ sprig_sha1sum "hello" }}"#,
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
        ),
        (
            r#"{{ sprig_sha256sum "hello" }}"#,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ),
        (r#"{{ sprig_adler32sum "hello" }}"#, "103547413"),
        // Regular expressions.
        (
            r#"{{ sprig_regexMatch "^[a-z]+$" "abc" }} {{ sprig_regexMatch "(" "abc" }}"#,
            "true false",
        ),
        (
            r#"{{ sprig_regexFindAll "[2,4,6,8]" "123456789" -1 }} {{ sprig_regexFindAll "[2,4,6,8]" "123456789" 2 }}"#,
            "[2 4 6 8] [2 4]",
        ),
        (r#"{{ sprig_regexFind "[a-zA-Z][1-9]" "abcd1234" }}"#, "d1"),
        (
            r#"{{ sprig_regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#,
            "-W-xxW-",
        ),
        (
            r#"{{ sprig_regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}"#,
            "-${1}-${1}-",
        ),
        (
            r#"{{ sprig_regexSplit "z+" "pizza" -1 }} {{ sprig_regexSplit "z+" "pizza" 1 }}"#,
            "[pi a] [pizza]",
        ),
        (r#"{{ sprig_regexQuoteMeta "1.5+x" }}"#, r"1\.5\+x"),
        // Paths, reflection.
        (
            r#"{{ sprig_base "/a/b.txt" }} {{ sprig_dir "/a/b.txt" }} {{ sprig_ext "/a/b.txt" }} {{ sprig_clean "a//b/../c/." }} {{ sprig_isAbs "a" }}"#,
            "b.txt /a .txt a/c false",
        ),
        (
            r#"{{ sprig_typeOf 1 }} {{ sprig_typeOf (sprig_list) }} {{ sprig_kindOf "x" }} {{ sprig_kindIs "map" (sprig_dict) }}"#,
            "int []interface {} string true",
        ),
        // Durations and dates.
        (
            r#"{{ sprig_duration "95" }} {{ sprig_duration 3600 }} {{ sprig_duration 0 }}"#,
            "1m35s 1h0m0s 0s",
        ),
        (
            r#"{{ sprig_durationRound "2h10m5s" }} {{ sprig_durationRound "400h" }} {{ sprig_durationRound "-3m" }} {{ sprig_durationRound "1s" }}"#,
            "2h 16d 3m 0s",
        ),
        (
            r#"{{ sprig_toDate "2006-01-02" "2017-12-31" | sprig_date "02/01/2006" }}"#,
            "31/12/2017",
        ),
        (
            r#"{{ sprig_toDate "2006-01-02 15:04" "2024-05-01 10:00" | sprig_dateModify "1.5h" | sprig_date "15:04" }}"#,
            "11:30",
        ),
        (
            r#"{{ sprig_toDate "2006-01-02 15:04" "2024-05-01 10:00" | sprig_dateModify "nonsense" | sprig_date "15:04" }}"#,
            "10:00",
        ),
        (
            r#"{{ sprig_toDate "2006-01-02" "nope" }}"#,
            "0001-01-01 00:00:00 +0000 UTC",
        ),
        (
            r#"{{ sprig_htmlDateInZone 1700000000 "UTC" }}"#,
            "2023-11-14",
        ),
        // Dates: Unix seconds in a zone.
        (
            r#"{{ sprig_dateInZone "2006-01-02 15:04:05" 1700000000 "UTC" }}"#,
            "2023-11-14 22:13:20",
        ),
        (
            r#"{{ sprig_unixEpoch "2023-11-14T22:13:20Z" }}"#,
            "1700000000",
        ),
    ];
    let mut failures = vec![];
    for (src, want) in cases {
        match run(src) {
            Ok(got) if got == *want => {}
            other => failures.push(format!("{src}\n  want {want:?}\n  got  {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sprig_errors_name_the_function_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{{ sprig_trimPrefix "a" }}"#,
            "template: out:1:3: executing \"out\": error calling sprig_trimPrefix: wrong number of args for sprig_trimPrefix: want 2 got 1",
        ),
        (
            r#"{{ sprig_upper 5 }}"#,
            "error calling sprig_upper: wrong type for value; expected string; got int",
        ),
        (
            r#"{{ sprig_upper nil }}"#,
            "error calling sprig_upper: invalid value; expected string",
        ),
        (
            r#"{{ sprig_repeat "3" "x" }}"#,
            "error calling sprig_repeat: wrong type for value; expected int; got string",
        ),
        (
            r#"{{ sprig_get "x" "k" }}"#,
            "wrong type for value; expected map[string]interface {}; got string",
        ),
        (
            r#"{{ sprig_ternary 1 2 "yes" }}"#,
            "wrong type for value; expected bool; got string",
        ),
        (r#"{{ sprig_first "abc" }}"#, "error calling sprig_first: Cannot find first on type string"),
        (r#"{{ sprig_append 1 2 }}"#, "Cannot push on type int"),
        (r#"{{ sprig_div 1 0 }}"#, "error calling sprig_div: runtime error: integer divide by zero"),
        (r#"{{ sprig_regexFind "(" "x" }}"#, "regexp: Compile(\"(\")"),
        (r#"{{ sprig_mustFromJson "nope" }}"#, "error calling sprig_mustFromJson: expected ident"),
        (r#"{{ sprig_fail "stop here" }}"#, "error calling sprig_fail: stop here"),
        (
            r#"{{ sprig_genPrivateKey "rsa" }}"#,
            "sprig_genPrivateKey is not available in Caravan: key and certificate generation is not built",
        ),
        (r#"{{ sprig_env "HOME" }}"#, "sprig_env is not available in Caravan: it reads the client agent's own environment"),
        (r#"{{ sprig_nope 1 }}"#, "function \"sprig_nope\" not defined"),
        (
            r#"{{ sprig_mustToDate "2006-01-02" "nope" }}"#,
            "error calling sprig_mustToDate: parsing time \"nope\"",
        ),
        (
            r#"{{ sprig_mustDateModify "soon" sprig_now }}"#,
            "time: invalid duration \"soon\"",
        ),
        (
            r#"{{ sprig_dateModify "1h" "yesterday" }}"#,
            "wrong type for value; expected time.Time; got string",
        ),
    ];
    let mut failures = vec![];
    for (src, want) in cases {
        match run(src) {
            Err(e) if e.contains(want) => {}
            other => failures.push(format!(
                "{src}\n  want error containing {want:?}\n  got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sprig_functions_obey_the_denylist() {
    let opts = RenderOptions {
        denylist: vec!["sprig_uuidv4".into()],
        ..RenderOptions::default()
    };
    let e = render("{{ sprig_uuidv4 }}", &opts, &source())
        .unwrap_err()
        .to_string();
    assert!(e.contains("function_denylist"), "{e}");
}

#[test]
fn sprig_non_repeatable_functions_have_the_right_shape() {
    let uuid = run("{{ sprig_uuidv4 }}").unwrap();
    let re =
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            .unwrap();
    assert!(re.is_match(&uuid), "{uuid}");
    assert_ne!(uuid, run("{{ sprig_uuidv4 }}").unwrap());

    let pw = run("{{ sprig_randAlphaNum 24 }}|{{ sprig_randNumeric 6 }}").unwrap();
    let re = regex::Regex::new("^[0-9A-Za-z]{24}\\|[0-9]{6}$").unwrap();
    assert!(re.is_match(&pw), "{pw}");

    // `now` prints as Go prints a time; the date functions read it back.
    let now = run("{{ sprig_now }}").unwrap();
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+$").unwrap();
    assert!(re.is_match(&now), "{now}");
    let epoch: i64 = run("{{ sprig_now | sprig_unixEpoch }}")
        .unwrap()
        .parse()
        .unwrap();
    let sys = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((epoch - sys).abs() < 3600, "{epoch} vs {sys}");
    let ago = run(r#"{{ sprig_now | sprig_dateModify "-90s" | sprig_ago }}"#).unwrap();
    assert!(ago == "1m30s" || ago == "1m31s", "{ago}");
    let day = run(r#"{{ sprig_dateInZone "2006-01-02" sprig_now "UTC" }}"#).unwrap();
    assert_eq!(day, chrono_free_utc_day(sys), "{day}");
}

/// The UTC calendar day of Unix seconds (civil-from-days), to check dates without a clock crate.
fn chrono_free_utc_day(secs: i64) -> String {
    let z = secs.div_euclid(86400) + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}
