//! A real browser for the console tests: Debian's `chromium`, driven through
//! `chromedriver` (WebDriver) by fantoccini. chromedriver is started by the
//! test on a free port and stopped by its PID; a missing binary fails the test
//! with the install command.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const INSTALL: &str = "sudo apt-get install chromium chromium-driver";

pub struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    pub fn start() -> Chromedriver {
        let port = switchboard::redis_server::free_port().expect("free port");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver is needed ({e}): {INSTALL}"));
        assert!(
            switchboard::redis_server::wait_listening(port, Duration::from_secs(10)),
            "chromedriver did not listen"
        );
        Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless chromium window of `width` × `height` CSS pixels.
    pub async fn browser(&self, width: u32, height: u32) -> Client {
        self.session(width, height, serde_json::json!({}), &[])
            .await
    }

    /// As [`Chromedriver::browser`], with pages seeing
    /// `prefers-color-scheme: dark` (as a system in dark mode gives them).
    pub async fn dark_browser(&self, width: u32, height: u32) -> Client {
        self.session(width, height, serde_json::json!({}), &["--force-dark-mode"])
            .await
    }

    /// As [`Chromedriver::browser`], with JavaScript off for every page (as
    /// a user may have it); WebDriver's own commands still work.
    pub async fn browser_without_javascript(&self, width: u32, height: u32) -> Client {
        let prefs = serde_json::json!({ "profile.managed_default_content_settings.javascript": 2 });
        self.session(width, height, prefs, &[]).await
    }

    async fn session(
        &self,
        width: u32,
        height: u32,
        prefs: serde_json::Value,
        extra_args: &[&str],
    ) -> Client {
        let binary = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| which(name))
            .unwrap_or_else(|| panic!("chromium is needed: {INSTALL}"));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ],
                "prefs": prefs,
            },
        });
        let mut capabilities = capabilities;
        if let Some(args) = capabilities["goog:chromeOptions"]["args"].as_array_mut() {
            args.extend(extra_args.iter().map(|a| serde_json::json!(a)));
        }
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no browser session ({e}): {INSTALL}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .map(|path| path.to_string_lossy().into_owned())
    })
}

/// Waits up to `within` for the element at `css` to read `text` (trimmed).
pub async fn wait_for_text(browser: &Client, css: &str, text: &str, within: Duration) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < within {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(found) = element.text().await
        {
            if found.trim() == text {
                return;
            }
            last = found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} reads {last:?}, not {text:?}, after {within:?}");
}

/// Waits up to `within` for an element at `css` to exist (and be shown).
pub async fn wait_for(
    browser: &Client,
    css: &str,
    within: Duration,
) -> fantoccini::elements::Element {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            return element;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {css} shown after {within:?}");
}

/// Waits up to `within` for the JavaScript function body `script` (with its
/// own `return`) to return `true` in the page.
pub async fn wait_for_js(browser: &Client, script: &str, within: Duration) {
    let started = Instant::now();
    let mut last = serde_json::Value::Null;
    while started.elapsed() < within {
        match browser.execute(script, vec![]).await {
            Ok(serde_json::Value::Bool(true)) => return,
            Ok(other) => last = other,
            Err(e) => last = serde_json::json!(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{script} still gives {last} after {within:?}");
}

/// Opens the console at `base` and signs in with `token`, by the keyboard.
pub async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/console/")).await.unwrap();
    let field = wait_for(browser, "#token", Duration::from_secs(10)).await;
    field.send_keys(token).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();
}

/// Waits up to `within` for the JavaScript expression `js` to be true in the
/// page.
pub async fn wait_until(browser: &Client, js: &str, within: Duration) {
    let started = Instant::now();
    let script = format!("return !!({js});");
    while started.elapsed() < within {
        if let Ok(serde_json::Value::Bool(true)) = browser.execute(&script, vec![]).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("still not true after {within:?}: {js}");
}

/// The value of the JavaScript expression `js` in the page.
pub async fn eval(browser: &Client, js: &str) -> serde_json::Value {
    browser
        .execute(&format!("return ({js});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
}

/// Saves what `browser` shows now as target/console-screenshots/NAME.png
/// (docs/console/'s are copies).
pub async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}
