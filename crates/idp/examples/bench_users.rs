//! Users files for `bench/search.sh`, in Auth0's bulk-import format (what `gatehouse idp --users`
//! and `POST /api/v2/jobs/users-imports` read), so the rows in the database are exactly those
//! the idp's own import path writes.
//!
//! ```sh
//! cargo run --release -p idp --example bench_users -- search 100000 users.json
//! cargo run --release -p idp --example bench_users -- import 10000 1000 DIR
//! ```
//!
//! `search N FILE`: N users with varied emails (first names over the whole alphabet, several
//! domains), names, ~10% with `app_metadata.groups` holding `"admin"`, the others other groups
//! or no `app_metadata` at all, some `user_metadata`; no passwords (search never reads them).
//! Deterministic: the same N writes the same file.
//!
//! `import N HASHES DIR`: N users with bcrypt (`$2b$`, cost 10) `custom_password_hash`es, split
//! into `DIR/import-K.json` files under Auth0's 500 KB limit, plus `DIR/passwords.tsv` (email,
//! password) for checking a login. HASHES distinct hashes are computed (each about 50 ms) and
//! used round-robin: the importer stores a given hash as it is and never verifies it, so how many
//! are distinct does not change its work, only how long this takes.

use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// Auth0's file limit is 500 KB; stay a little under it.
const FILE_BYTES: usize = 500_000;

const FIRST: [&str; 48] = [
    "aaron",
    "abigail",
    "adam",
    "alice",
    "amelia",
    "andrea",
    "anna",
    "arthur",
    "beatrice",
    "benjamin",
    "bruno",
    "carla",
    "charlotte",
    "chen",
    "daniel",
    "diana",
    "elena",
    "emma",
    "fatima",
    "felix",
    "giulia",
    "hana",
    "hugo",
    "ines",
    "isaac",
    "jack",
    "julia",
    "kai",
    "karim",
    "laura",
    "leo",
    "lucia",
    "marco",
    "maria",
    "mohammed",
    "nina",
    "noah",
    "olga",
    "oscar",
    "paolo",
    "priya",
    "quentin",
    "rosa",
    "sara",
    "tomas",
    "ugo",
    "victor",
    "zoe",
];
const LAST: [&str; 24] = [
    "rossi", "smith", "garcia", "muller", "dubois", "kowalski", "tanaka", "silva", "novak", "jensen", "ferrari",
    "brown", "wilson", "martin", "bianchi", "costa", "nguyen", "ivanova", "schmidt", "moreau", "young", "khan",
    "lopez", "weber",
];
const DOMAINS: [&str; 8] = [
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "acme.test",
    "globex.test",
    "initech.test",
    "umbrella.test",
    "hooli.test",
];
const GROUPS: [&str; 6] = ["editor", "viewer", "author", "reviewer", "support", "billing"];
const LOCALES: [&str; 5] = ["en", "it", "de", "fr", "es"];

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn search_user(rng: &mut Rng, i: usize) -> Value {
    let (first, last, domain) = (rng.pick(&FIRST), rng.pick(&LAST), rng.pick(&DOMAINS));
    let email = match rng.below(3) {
        0 => format!("{first}.{last}{i}@{domain}"),
        1 => format!("{}{last}{i}@{domain}", &first[..1]),
        _ => format!("{first}{i}@{domain}"),
    };
    let mut user = json!({
        "email": email,
        "email_verified": rng.below(4) != 0,
        "given_name": capitalise(first),
        "family_name": capitalise(last),
        "name": format!("{} {}", capitalise(first), capitalise(last)),
    });
    // ~10% admins (with another group or two besides), ~60% other groups, the rest none.
    let roll = rng.below(100);
    let groups: Option<Vec<&str>> = if roll < 10 {
        let mut g = vec!["admin"];
        if rng.below(2) == 0 {
            g.push(rng.pick(&GROUPS));
        }
        Some(g)
    } else if roll < 70 {
        let mut g = vec![rng.pick(&GROUPS)];
        if rng.below(3) == 0 {
            let other = rng.pick(&GROUPS);
            if other != g[0] {
                g.push(other);
            }
        }
        Some(g)
    } else {
        None
    };
    if let Some(groups) = groups {
        user["app_metadata"] = json!({"groups": groups, "tenant": format!("t{}", rng.below(50))});
    } else if rng.below(2) == 0 {
        user["app_metadata"] = json!({});
    }
    if rng.below(2) == 0 {
        user["user_metadata"] = json!({"locale": rng.pick(&LOCALES), "newsletter": rng.below(2) == 0});
    }
    user
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn search(n: usize, out: &Path) -> std::io::Result<()> {
    let mut rng = Rng(0x6761_7465);
    let users: Vec<Value> = (0..n).map(|i| search_user(&mut rng, i)).collect();
    std::fs::write(out, serde_json::to_vec(&users)?)?;
    let admins = users.iter().filter(|u| u["app_metadata"]["groups"].to_string().contains("\"admin\"")).count();
    let admin_a = users
        .iter()
        .filter(|u| {
            u["app_metadata"]["groups"].to_string().contains("\"admin\"")
                && u["email"].as_str().is_some_and(|e| e.starts_with('a'))
        })
        .count();
    eprintln!("{n} users, {admins} admins, {admin_a} admins with an email starting with a -> {}", out.display());
    Ok(())
}

fn import(n: usize, hashes: usize, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let hashes = hashes.clamp(1, n.max(1));
    let started = std::time::Instant::now();
    let table: Vec<(String, String)> = (0..hashes)
        .map(|h| {
            let password = format!("Bench-{h}-Passw0rd!");
            let hash = bcrypt::hash(&password, 10).expect("bcrypt");
            (password, hash)
        })
        .collect();
    eprintln!("{hashes} bcrypt hashes (cost 10) in {:.1} s", started.elapsed().as_secs_f64());
    let mut passwords = std::fs::File::create(dir.join("passwords.tsv"))?;
    let (mut file, mut chunk, mut bytes) = (0, Vec::<String>::new(), 2);
    let flush = |chunk: &mut Vec<String>, file: &mut usize| -> std::io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        std::fs::write(dir.join(format!("import-{file}.json")), format!("[{}]", chunk.join(",")))?;
        *file += 1;
        chunk.clear();
        Ok(())
    };
    for i in 0..n {
        let (password, hash) = &table[i % hashes];
        let email = format!("imported{i}@bench.example.com");
        let row = json!({
            "email": email,
            "email_verified": true,
            "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hash}},
        })
        .to_string();
        if bytes + row.len() + 1 > FILE_BYTES {
            flush(&mut chunk, &mut file)?;
            bytes = 2;
        }
        bytes += row.len() + 1;
        chunk.push(row);
        writeln!(passwords, "{email}\t{password}")?;
    }
    flush(&mut chunk, &mut file)?;
    eprintln!("{n} users in {file} files under {FILE_BYTES} bytes -> {}", dir.display());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok());
    match (args.first().map(String::as_str), args.len()) {
        (Some("search"), 3) => search(number(1).expect("N"), Path::new(&args[2])),
        (Some("import"), 4) => import(number(1).expect("N"), number(2).expect("HASHES"), Path::new(&args[3])),
        _ => {
            eprintln!("usage: bench_users search N FILE | bench_users import N HASHES DIR");
            std::process::exit(2)
        }
    }
}
