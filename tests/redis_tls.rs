//! A Redis reached over TLS (`rediss://`), as managed Redis services require:
//! routing works against a real `redis-server --tls-port` whose certificate a
//! test CA signed, given that CA (`SWITCHBOARD_REDIS_CA_FILE`); a server whose
//! certificate does not verify is not trusted (not ready, callers get the
//! emergency answer); and the CA setting is checked at start.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use switchboard::redis_server::{RedisServer, TlsFiles};

/// A throwaway CA and a certificate it signed for `localhost` and 127.0.0.1,
/// made with the `openssl` command line in `dir`; the CA's PEM path.
fn make_certificates(dir: &Path) -> (PathBuf, TlsFiles) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl is needed ({e}): install it with `sudo apt-get install openssl`")
            });
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=switchboard test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "redis.crt",
    ]);
    (
        dir.join("ca.crt"),
        TlsFiles {
            cert: dir.join("redis.crt"),
            key: dir.join("redis.key"),
        },
    )
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS redis-server, its CA's PEM path, and the directory of its files.
fn start_tls_redis(name: &str) -> (RedisServer, PathBuf, TempDir) {
    let dir = std::env::temp_dir().join(format!("sb-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, files) = make_certificates(&dir);
    match RedisServer::start_tls(&files) {
        Ok(redis) => (redis, ca, TempDir(dir)),
        Err(e) => panic!("these tests need redis-server with TLS (Debian's has it): {e}"),
    }
}

/// A server on the TLS port of `redis`, trusting `ca` (PEM) or the system's roots.
async fn app_on_tls(redis: RedisServer, ca: Option<Vec<u8>>) -> TestApp {
    let mut s = settings(&redis.tls_url().expect("a TLS server"), ROUTING);
    s.redis_ca = ca;
    TestApp {
        redis: TestRedis::Own(redis),
        server: TestServer::start(s).await,
        http: switchboard::tls::http_client_builder()
            .build()
            .expect("HTTP client"),
    }
}

#[tokio::test]
async fn over_tls_with_the_servers_ca_calls_are_routed() {
    let (redis, ca, _dir) = start_tls_redis("routed");
    let app = app_on_tls(redis, Some(std::fs::read(&ca).unwrap())).await;
    assert_eq!(app.readyz().await, 200);
    app.add_available("ana", &["sales"]).await;
    let dial = app.call(&call_sid(1), SALES).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    // It is the TLS server's data: read back on its plain port.
    let mut plain = redis_conn(&app.redis.url()).await;
    let state: Option<String> = redis::cmd("HGET")
        .arg("sb:{default}:agent:ana")
        .arg("state")
        .query_async(&mut plain)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("reserved"));
}

#[tokio::test]
async fn a_certificate_that_does_not_chain_to_a_trusted_ca_is_refused() {
    // The system's roots do not know the test CA: no connection, so not
    // ready, and a caller gets the emergency answer, not an error.
    let (redis, _ca, _dir) = start_tls_redis("untrusted");
    let app = app_on_tls(redis, None).await;
    assert_eq!(app.readyz().await, 503);
    let answer = app.call(&call_sid(2), SALES).await;
    assert_eq!(answer.status, 200);
    assert_eq!(dialed(&answer), None, "{}", answer.body);
}

#[test]
fn the_ca_file_is_checked_at_start() {
    let parse = |args: &[&str]| settings_from_args(args).map(|_| ());
    let missing = parse(&[
        "--redis-url",
        "rediss://redis.example.com:6380",
        "--redis-ca-file",
        "/nonexistent/ca.pem",
    ])
    .unwrap_err();
    assert!(
        missing.starts_with("SWITCHBOARD_REDIS_CA_FILE /nonexistent/ca.pem"),
        "{missing}"
    );
    let plain = parse(&[
        "--redis-url",
        "redis://redis.example.com:6379",
        "--redis-ca-file",
        "/nonexistent/ca.pem",
    ])
    .unwrap_err();
    assert!(plain.contains("not rediss://"), "{plain}");
    // In Cluster mode the seeds say whether TLS is used, all the same way.
    let plain_seeds = parse(&[
        "--redis-url",
        "rediss://ignored:6380",
        "--redis-cluster",
        "redis://10.0.0.1:6379,redis://10.0.0.2:6379",
        "--redis-ca-file",
        "/nonexistent/ca.pem",
    ])
    .unwrap_err();
    assert!(plain_seeds.contains("not rediss://"), "{plain_seeds}");
    let mixed = parse(&[
        "--redis-cluster",
        "rediss://10.0.0.1:6380,redis://10.0.0.2:6379",
    ])
    .unwrap_err();
    assert!(mixed.contains("some seed nodes are rediss://"), "{mixed}");
}

/// A Cluster whose nodes talk TLS to clients, to each other and to their
/// replicas, reached through `rediss://` seeds and the test CA: calls route and
/// settle. (The Cluster's failover is tested in tests/redis_cluster.rs.)
#[tokio::test]
async fn a_cluster_over_tls_routes_with_the_ca() {
    let dir = std::env::temp_dir().join(format!("sb-tls-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = TempDir(dir.clone());
    let (ca, files) = make_certificates(&dir);
    let cluster = common::cluster::Cluster::start_tls(&files, &ca);
    let on_cluster = |ca: Option<Vec<u8>>| {
        let mut s = cluster_settings(&cluster.tls_urls(), "tls-tenant", ROUTING);
        s.redis_ca = ca;
        TestServer::start(s)
    };
    let app = TestApp::elsewhere(on_cluster(Some(std::fs::read(&ca).unwrap())).await);
    // Six TLS handshakes on a busy machine may outlast the first check.
    let started = std::time::Instant::now();
    while app.readyz().await != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never ready over TLS with the CA"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Without the CA (the system's roots) the same nodes are never trusted.
    let untrusting = TestApp::elsewhere(on_cluster(None).await);
    for _ in 0..10 {
        assert_eq!(untrusting.readyz().await, 503);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    untrusting.server.shutdown().await;
    app.add_available("ana", &["sales"]).await;
    let sid = call_sid(1);
    let dial = app.call(&sid, SALES).await;
    assert_eq!(dialed(&dial).as_deref(), Some("ana"), "{}", dial.body);
    app.agent_leg(&sid, &dial, "in-progress").await;
    assert_eq!(app.agent("ana").await["state"], "on_call");
    app.call_status(&sid, "completed").await;
    assert!(app.agent("ana").await["call_sid"].is_null());
}
