//! The newcomer's path through `gatehouse up` in a real browser (headless chromium over
//! WebDriver, the client of `browser.rs`), against the real binary on its own port and data
//! dir: open the URL, land on the login page, sign in, see the CMS, give a user a group on the
//! users page, sign out; and a user without the group sees "no access". Screenshots go to
//! `target/test-output/browser/up-*.png` (or `$GATEHOUSE_TEST_OUTPUT`).

use crate::browser::{Browser, output_dir, submit_login, wait_for_url};
use crate::support::{TempDir, dev_env, free_port};
use crate::up_support::UpProcess;
use serde_json::json;

async fn on_login_page(browser: &Browser, up: &UpProcess) {
    let login = up.idp("/u/login");
    wait_for_url(browser, "the login page", |u| u.starts_with(&login)).await;
    assert_eq!(browser.title().await, "Log in");
}

async fn clear(browser: &Browser, css: &str) {
    let element = browser.find(css).await;
    browser.session_command(reqwest::Method::POST, &format!("element/{element}/clear"), Some(json!({}))).await;
}

#[tokio::test]
async fn browser_up_newcomer_path() {
    let browser = Browser::launch().await;
    let data = TempDir::new("browser-up");
    let up = UpProcess::start(data.path(), free_port());
    let shots = output_dir();
    let home = up.cms("/");
    let (admin, admin_password) = (dev_env("ADMIN_EMAIL"), dev_env("ADMIN_PASSWORD"));
    let (user, user_password) = (dev_env("USER_EMAIL"), dev_env("USER_PASSWORD"));

    // The printed URL leads to the login page.
    browser.goto(&home).await;
    on_login_page(&browser, &up).await;
    browser.screenshot(&shots.join("up-1-login.png")).await;

    // A user without the admin group is told so, clearly.
    submit_login(&browser, &user, &user_password).await;
    wait_for_url(&browser, "the CMS", |u| u == home).await;
    assert_eq!(browser.title().await, "No access");
    let message = browser.text("#no-access").await;
    assert!(message.contains(&user) && message.contains("admin"), "{message:?}");
    browser.screenshot(&shots.join("up-2-no-access.png")).await;
    browser.click("#sign-out").await;
    on_login_page(&browser, &up).await;

    // The admin sees who they are and their groups.
    submit_login(&browser, &admin, &admin_password).await;
    wait_for_url(&browser, "the CMS", |u| u == home).await;
    assert_eq!(browser.text("#email").await, admin);
    assert_eq!(browser.text("#groups").await, "admin");
    browser.screenshot(&shots.join("up-3-cms-home.png")).await;

    // The users page lists the users; the admin gives the plain user the admin group.
    browser.click("#users-link").await;
    wait_for_url(&browser, "the users page", |u| u.starts_with(&up.cms("/admin/users"))).await;
    let row = format!("tr[data-email=\"{user}\"]");
    assert_eq!(browser.text(&format!("tr[data-email=\"{admin}\"] td")).await, admin);
    clear(&browser, &format!("{row} input[name=groups]")).await;
    browser.type_into(&format!("{row} input[name=groups]"), "admin").await;
    browser.click(&format!("{row} button[type=submit]")).await;
    wait_for_url(&browser, "the saved users page", |u| u.contains("saved=")).await;
    let saved = browser.text("#saved").await;
    assert!(saved.contains(&user), "{saved:?}");
    browser.screenshot(&shots.join("up-4-users.png")).await;

    // Logout lands back on the login page.
    browser.click("#sign-out").await;
    on_login_page(&browser, &up).await;

    // A second login proves the change: the plain user now sees the CMS with the group.
    submit_login(&browser, &user, &user_password).await;
    wait_for_url(&browser, "the CMS", |u| u == home).await;
    assert_eq!(browser.text("#email").await, user);
    assert_eq!(browser.text("#groups").await, "admin");
}
