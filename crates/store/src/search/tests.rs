//! Parser tests: the query strings Auth0 documents, the grammar decisions in the module docs,
//! and input that must fail cleanly.

use super::*;

fn q(text: &str) -> Query {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn fails(text: &str) -> String {
    match parse(text) {
        Ok(query) => panic!("{text:?} should fail, parsed as {query:?}"),
        Err(e) => e.message().to_owned(),
    }
}

fn text(field: TextField, value: &str) -> Query {
    Query::Match(Predicate::Text { field, value: TextMatch::Exact(value.into()) })
}

fn pattern(field: TextField, parts: Vec<PatternPart>) -> Query {
    Query::Match(Predicate::Text { field, value: TextMatch::Wildcard(Pattern(parts)) })
}

fn range(field: NumberField, min: Option<i64>, max: Option<i64>) -> Query {
    Query::Match(Predicate::Number { field, range: Range { min, max } })
}

fn meta(path: &str, value: &str) -> Query {
    let Some(Ok(path)) = MetadataPath::parse(path) else { panic!("bad path {path}") };
    let parsed = parse(&format!("{}:\"{value}\"", "app_metadata.x")).unwrap();
    let Query::Match(Predicate::Metadata { value, .. }) = parsed else { unreachable!() };
    Query::Match(Predicate::Metadata { path, value })
}

fn name(value: &str) -> Query {
    text(TextField::Name, value)
}

fn not(query: Query) -> Query {
    Query::Not(Box::new(query))
}

fn lit(s: &str) -> PatternPart {
    PatternPart::Literal(s.into())
}

const DAY: i64 = 86_400_000;
const JAN_1_2024: i64 = 1_704_067_200_000;
const JAN_1_2025: i64 = 1_735_689_600_000;

#[test]
fn terms_phrases_and_escapes() {
    assert_eq!(q("name:john"), name("john"));
    assert_eq!(q(r#"name:"jane smith""#), name("jane smith"));
    assert_eq!(q(r"name:John\ Doe"), name("John Doe"));
    assert_eq!(q(r#"name:"say \"hi\" \\ now""#), name(r#"say "hi" \ now"#));
    assert_eq!(q(r"name:a\*b\:c\(d\)"), name("a*b:c(d)"));
    assert_eq!(q("name: john"), name("john"));
    assert_eq!(q("email:A@X.com"), text(TextField::Email, "A@X.com"));
    assert_eq!(q("email.domain:example.com"), text(TextField::EmailDomain, "example.com"));
    assert_eq!(q(r#"identities.connection:"dev-users""#), text(TextField::IdentityConnection, "dev-users"));
    assert_eq!(q("identities.connection:dev-users"), text(TextField::IdentityConnection, "dev-users"));
    // After `field:`, colons belong to the value (IPv6 addresses, timestamps).
    assert_eq!(q("last_ip:2001:db8::1"), text(TextField::LastIp, "2001:db8::1"));
    assert_eq!(q("user_id:auth0|abc"), text(TextField::UserId, "auth0|abc"));
    assert_eq!(q("name:Zoë"), name("Zoë"));
    assert_eq!(q(r#"name:"""#), name(""));
    assert_eq!(q("  \t "), Query::All);
    assert_eq!(q(""), Query::All);
}

#[test]
fn bare_terms_search_root_text() {
    assert_eq!(q("john"), Query::Match(Predicate::AnyText(TextMatch::Exact("john".into()))));
    assert_eq!(
        q("jo*"),
        Query::Match(Predicate::AnyText(TextMatch::Wildcard(Pattern(vec![lit("jo"), PatternPart::AnyRun]))))
    );
    assert!(fails("[1 TO 2]").contains("needs a field"));
}

#[test]
fn wildcards() {
    assert_eq!(q("email:adm*"), pattern(TextField::Email, vec![lit("adm"), PatternPart::AnyRun]));
    assert_eq!(q("name:j*"), pattern(TextField::Name, vec![lit("j"), PatternPart::AnyRun]));
    assert_eq!(
        q("name:*dministr*"),
        pattern(TextField::Name, vec![PatternPart::AnyRun, lit("dministr"), PatternPart::AnyRun])
    );
    assert_eq!(q("name:*usa"), pattern(TextField::Name, vec![PatternPart::AnyRun, lit("usa")]));
    assert_eq!(
        q("name:j?n*"),
        pattern(TextField::Name, vec![lit("j"), PatternPart::AnyChar, lit("n"), PatternPart::AnyRun])
    );
    // Quoted or escaped, `*` is a character.
    assert_eq!(q(r#"email:"adm*""#), text(TextField::Email, "adm*"));
    assert_eq!(q(r"email:adm\*"), text(TextField::Email, "adm*"));
    assert!(fails("name:*sa").contains("3 literal characters"));
    assert!(fails("name:?ab").contains("3 literal characters"));
    assert!(fails("email:*").contains("_exists_"));
    assert!(fails("email:**").contains("_exists_"));
    assert!(fails("*").contains("_exists_"));
    assert!(fails("app_metadata.plan:gold*").contains("metadata"));
    assert!(fails("logins_count:1*").contains("text fields"));
    assert!(fails("blocked:t*").contains("text fields"));
}

#[test]
fn ranges_on_numbers() {
    assert_eq!(q("logins_count:[2 TO 5]"), range(NumberField::LoginsCount, Some(2), Some(6)));
    assert_eq!(q("logins_count:{2 TO 5}"), range(NumberField::LoginsCount, Some(3), Some(5)));
    assert_eq!(q("logins_count:{2 TO *]"), range(NumberField::LoginsCount, Some(3), None));
    assert_eq!(q("logins_count:[* TO 5}"), range(NumberField::LoginsCount, None, Some(5)));
    assert_eq!(q("logins_count:[* TO *]"), range(NumberField::LoginsCount, None, None));
    assert_eq!(q("logins_count:[ 2  TO  5 ]"), range(NumberField::LoginsCount, Some(2), Some(6)));
    assert_eq!(q("logins_count:7"), range(NumberField::LoginsCount, Some(7), Some(8)));
    assert_eq!(q("logins_count:[-3 TO -1]"), range(NumberField::LoginsCount, Some(-3), Some(0)));
    assert_eq!(q("logins_count:[1 TO 9223372036854775807]"), range(NumberField::LoginsCount, Some(1), None));
    assert_eq!(
        q("logins_count:{9223372036854775807 TO *]"),
        range(NumberField::LoginsCount, Some(i64::MAX), Some(i64::MAX))
    );
    assert!(fails("logins_count:[a TO 5]").contains("not an integer"));
    assert!(fails("logins_count:[1.5 TO 5]").contains("not an integer"));
    assert!(fails("logins_count:abc").contains("not an integer"));
    assert!(fails("logins_count:[1 TO 5").contains("end with"));
    assert!(fails("logins_count:[1 5]").contains("[low TO high]"));
    assert!(fails("logins_count:[1 to 5]").contains("[low TO high]"));
    assert!(fails("logins_count:[1 TO ]").contains("bound is missing"));
    assert!(fails("app_metadata.level:[1 TO 5]").contains("metadata"));
    assert!(fails("name:[a TO b]").contains("logins_count, created_at"));
}

#[test]
fn ranges_and_values_on_dates() {
    // An inclusive upper date bound takes in its whole day; an exclusive one stops before it.
    assert_eq!(
        q("created_at:[2024-01-01 TO 2024-12-31]"),
        range(NumberField::CreatedAt, Some(JAN_1_2024), Some(JAN_1_2025))
    );
    assert_eq!(
        q("created_at:{2024-01-01 TO 2024-12-31}"),
        range(NumberField::CreatedAt, Some(JAN_1_2024 + DAY), Some(JAN_1_2025 - DAY))
    );
    assert_eq!(q("updated_at:[2018-01-15 TO *]"), range(NumberField::UpdatedAt, Some(1_515_974_400_000), None));
    assert_eq!(q("updated_at:{2018-01-15 TO *]"), range(NumberField::UpdatedAt, Some(1_516_060_800_000), None));
    assert_eq!(q("last_login:[* TO 2017-12]"), range(NumberField::LastLogin, None, Some(1_514_764_800_000)));
    assert_eq!(q("created_at:2024"), range(NumberField::CreatedAt, Some(JAN_1_2024), Some(JAN_1_2025)));
    assert_eq!(q("created_at:2024-01-01"), range(NumberField::CreatedAt, Some(JAN_1_2024), Some(JAN_1_2024 + DAY)));
    assert_eq!(
        q("created_at:[2024-01-01T00:00:00.000Z TO 2024-01-01T10:00:00Z}"),
        range(NumberField::CreatedAt, Some(JAN_1_2024), Some(JAN_1_2024 + 36_000_000))
    );
    assert_eq!(
        q(r#"created_at:"2024-01-01T01:00:00+01:00""#),
        range(NumberField::CreatedAt, Some(JAN_1_2024), Some(JAN_1_2024 + 1000))
    );
    assert!(fails("created_at:[2024-13-01 TO *]").contains("not a date"));
    assert!(fails("created_at:yesterday").contains("not a date"));
    assert!(fails("created_at:1704067200000").contains("not a date"));
}

#[test]
fn flags_take_booleans() {
    assert_eq!(q("blocked:true"), Query::Match(Predicate::Flag { field: FlagField::Blocked, value: true }));
    assert_eq!(
        q("email_verified:false"),
        Query::Match(Predicate::Flag { field: FlagField::EmailVerified, value: false })
    );
    assert!(fails("blocked:yes").contains("boolean"));
    assert!(fails("blocked:TRUE").contains("boolean"));
}

#[test]
fn metadata_paths_and_literals() {
    let Query::Match(Predicate::Metadata { path, value }) = q(r#"app_metadata.groups:"admin""#) else { panic!() };
    assert_eq!((path.kind(), path.segments()), (MetadataKind::App, &["groups".to_owned()][..]));
    assert_eq!(value, Literal { text: "admin".into(), number: None, boolean: None });

    let Query::Match(Predicate::Metadata { path, value }) = q("user_metadata.profile.city:Milan") else { panic!() };
    assert_eq!((path.kind(), path.segments().len()), (MetadataKind::User, 2));
    assert_eq!(value.text, "Milan");

    let literal = |text: &str| match q(&format!("app_metadata.x:{text}")) {
        Query::Match(Predicate::Metadata { value, .. }) => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(literal("3").number, Some(Number::Integer(3)));
    assert_eq!(literal("-3").number, Some(Number::Integer(-3)));
    assert_eq!(literal("2.5").number, Some(Number::Float(2.5)));
    assert_eq!(literal("1e3").number, Some(Number::Float(1000.0)));
    assert_eq!(literal("\"3\"").number, Some(Number::Integer(3)));
    assert_eq!(literal("99999999999999999999").number, Some(Number::Float(1e20)));
    for not_a_number in ["3a", "1.", ".5", "-", "inf", "NaN", "0x10", "1e", "1e400"] {
        assert_eq!(literal(not_a_number).number, None, "{not_a_number}");
    }
    assert_eq!(literal("true").boolean, Some(true));
    assert_eq!(literal("false").boolean, Some(false));
    assert_eq!(literal("True").boolean, None);

    assert!(fails("app_metadata:x").contains("name a field inside"));
    assert!(fails("app_metadata..x:1").contains("invalid metadata field name"));
    assert!(fails("app_metadata.x.:1").contains("invalid metadata field name"));
    assert!(fails("app_metadata.a.b.c.d.e.f.g.h.i.j.k:1").contains("at most 10 levels"));
    assert!(fails("app_metadatax:1").contains("not a searchable field"));
    assert!(fails(r#"app_metadata.a\"b:1"#).contains("invalid metadata field name"));
}

#[test]
fn exists() {
    let exists = |target| Query::Match(Predicate::Exists(target));
    assert_eq!(q("_exists_:email"), exists(Target::Root(RootField::Text(TextField::Email))));
    assert_eq!(q("_exists_: last_login"), exists(Target::Root(RootField::Number(NumberField::LastLogin))));
    let Some(Ok(groups)) = MetadataPath::parse("app_metadata.groups") else { panic!() };
    assert_eq!(q("_exists_:app_metadata.groups"), exists(Target::Metadata(groups)));
    let Some(Ok(whole)) = MetadataPath::parse("user_metadata") else { panic!() };
    assert_eq!(q("_exists_:user_metadata"), exists(Target::Metadata(whole)));
    assert_eq!(q("NOT _exists_:email"), not(exists(Target::Root(RootField::Text(TextField::Email)))));
    assert!(fails("_exists_:nope").contains("not a searchable field"));
    assert!(fails("_exists_:emai*").contains("not a pattern"));
    assert!(fails("_exists_:(email)").contains("field name"));
}

#[test]
fn operators_and_precedence() {
    let (a, b, c, d) = (name("a"), name("b"), name("c"), name("d"));
    // Side by side means OR (Lucene's default operator).
    assert_eq!(q("name:a name:b"), Query::Or(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:a OR name:b"), Query::Or(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:a || name:b"), Query::Or(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:a AND name:b"), Query::And(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:a && name:b"), Query::And(vec![a.clone(), b.clone()]));
    // AND binds tighter than OR, on either side.
    assert_eq!(q("name:a OR name:b AND name:c"), Query::Or(vec![a.clone(), Query::And(vec![b.clone(), c.clone()])]));
    assert_eq!(
        q("name:a AND name:b OR name:c AND name:d"),
        Query::Or(vec![Query::And(vec![a.clone(), b.clone()]), Query::And(vec![c.clone(), d.clone()])])
    );
    assert_eq!(q("(name:a OR name:b) AND name:c"), Query::And(vec![Query::Or(vec![a.clone(), b.clone()]), c.clone()]));
    assert_eq!(q("((name:a))"), a);
    // NOT, !, - exclude; + requires and makes optional clauses rank only.
    assert_eq!(q("NOT name:a"), not(a.clone()));
    assert_eq!(q("!name:a"), not(a.clone()));
    assert_eq!(q("-name:a"), not(a.clone()));
    assert_eq!(q("name:a AND NOT name:b"), Query::And(vec![a.clone(), not(b.clone())]));
    assert_eq!(q("name:a -name:b"), Query::And(vec![not(b.clone()), a.clone()]));
    assert_eq!(q("name:a NOT name:b"), Query::And(vec![not(b.clone()), a.clone()]));
    assert_eq!(q("+name:a name:b"), a.clone());
    assert_eq!(q("+name:a +name:b -name:c"), Query::And(vec![a.clone(), b.clone(), not(c.clone())]));
    assert_eq!(q("NOT NOT name:a"), not(not(a.clone())));
    assert_eq!(q("NOT(name:a)"), not(a.clone()));
    // Operators are upper case; lower case they are words.
    let word = |w: &str| Query::Match(Predicate::AnyText(TextMatch::Exact(w.into())));
    assert_eq!(q("a and b"), Query::Or(vec![word("a"), word("and"), word("b")]));
    assert_eq!(q("ORACLE"), word("ORACLE"));
    assert_eq!(q("a&&b"), word("a&&b"));
}

#[test]
fn field_groups() {
    let (a, b) = (name("a"), name("b"));
    assert_eq!(q("name:(a OR b)"), Query::Or(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:(a b)"), Query::Or(vec![a.clone(), b.clone()]));
    assert_eq!(q(r#"name:(a AND "b")"#), Query::And(vec![a.clone(), b.clone()]));
    assert_eq!(q("name:(a -b)"), Query::And(vec![not(b.clone()), a.clone()]));
    assert_eq!(
        q("logins_count:([1 TO 2] OR 5)"),
        Query::Or(vec![
            range(NumberField::LoginsCount, Some(1), Some(3)),
            range(NumberField::LoginsCount, Some(5), Some(6))
        ])
    );
    assert_eq!(q("app_metadata.g:(x OR y)"), Query::Or(vec![meta("app_metadata.g", "x"), meta("app_metadata.g", "y")]));
    // A field inside the group overrides the group's.
    assert_eq!(q("name:(a OR email:b)"), Query::Or(vec![a, text(TextField::Email, "b")]));
}

#[test]
fn syntax_errors_have_messages() {
    assert!(fails("(name:a").contains("missing ')'"));
    assert!(fails("name:a)").contains("unexpected ')'"));
    assert!(fails(")").contains("unexpected ')'"));
    assert!(fails("((name:a)").contains("missing ')'"));
    assert!(fails("()").contains("empty parentheses"));
    assert!(fails("name:()").contains("empty parentheses"));
    assert!(fails("foo:bar").contains("\"foo\" is not a searchable field"));
    assert!(fails("picture:x").contains("not a searchable field"));
    assert!(fails("connection:x").contains("not a searchable field"));
    assert!(fails("AND name:a").contains("left"));
    assert!(fails("name:a AND").contains("right"));
    assert!(fails("name:a OR").contains("right"));
    assert!(fails("name:a AND OR name:b").contains("right"));
    assert!(fails("name:a OR OR name:b").contains("left"));
    assert!(fails("NOT").contains("term was expected"));
    assert!(fails("name:").contains("has no value"));
    assert!(fails("name:\"abc").contains("unterminated"));
    assert!(fails("name:abc\\").contains("backslash"));
    assert!(fails("name:a^2").contains("boosts"));
    assert!(fails("name:jon~").contains("fuzzy"));
    assert!(fails("/jo.n/").contains("regular expressions"));
    assert!(fails("name:a[b").contains("unexpected '['"));
    assert!(fails("name:a\u{0}b").contains("control characters"));
    // Messages point at the offending character.
    assert_eq!(fails("name:a)"), "unbalanced parentheses: unexpected ')' (at character 7)");
}

#[test]
fn hostile_input_fails_fast_and_cleanly() {
    assert!(fails(&"a".repeat(100 * 1024)).contains("longer than 4096 bytes"));
    let deep = format!("{}name:a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(fails(&deep).contains("longer than"));
    // Within the length limit, nesting is what stops it.
    let deep = format!("{}name:a{}", "(".repeat(1_000), ")".repeat(1_000));
    assert!(fails(&deep).contains("nests deeper than 32"));
    assert!(fails(&"(".repeat(4_000)).contains("nests deeper"));
    assert!(fails(&"NOT ".repeat(1_000)).contains("nests deeper"));
    assert!(fails(&"-".repeat(4_000)).contains("nests deeper"));
    assert_eq!(q(&format!("{}name:a{}", "(".repeat(31), ")".repeat(31))), name("a"));
    let many = vec!["name:a"; MAX_TERMS + 1].join(" OR ");
    assert!(fails(&many).contains("more than 100 terms"));
    assert!(parse(&vec!["name:a"; MAX_TERMS].join(" OR ")).is_ok());
    // Whatever the bytes, parsing ends in a query or an error.
    for text in [
        "\"",
        "\\",
        "[",
        "{",
        "name:[",
        "name:{* TO",
        "_exists_:",
        "((((",
        "))))",
        "!!!!",
        "+-+-",
        "::::",
        "a:b:c:d",
        "🦀:x",
        "name:🦀*",
        "\u{feff}name:a",
        "name:\"\u{202e}\"",
        "&&",
        "||",
        "TO",
        "[* TO *]",
    ] {
        let _ = parse(text);
    }
}

#[test]
fn sort_fields() {
    assert_eq!(SortField::parse("created_at"), Some(SortField::CreatedAt));
    assert_eq!(SortField::parse("logins_count"), Some(SortField::LoginsCount));
    assert_eq!(SortField::parse("app_metadata.x"), None);
    assert_eq!(SortField::parse("picture"), None);
}
