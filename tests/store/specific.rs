//! Checks that only make sense for one backend: the Redis key layout,
//! cluster spread, TLS, password redaction, reconnecting, the store
//! setting's forms, and redb durability across reopen.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ims_callback::store::{AnyStore, CasOutcome, Store, StoreError, StoreOptions, Version};

use crate::harness::{Backend, Redis, RedisCluster, RedisServer, redis_cli, run, unique};

/// The bucket of a key as documented in `src/store/redis.rs` (FNV-1a 32 mod 16).
fn bucket(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) % 16
}

fn port_of(backend: &Redis) -> u16 {
    match backend {
        Redis::Shared(s) => s.port,
        Redis::Dedicated(s) => s.port,
    }
}

async fn open(spec: &str) -> Result<AnyStore, StoreError> {
    AnyStore::open_with(
        spec,
        &StoreOptions {
            timeout: Duration::from_secs(2),
        },
    )
    .await
}

#[test]
fn redis_key_layout_is_as_documented() {
    run(async {
        let backend = Redis::shared();
        let port = port_of(&backend);
        let prefix = format!("lay{}:", unique());
        let store = open(&format!("redis://127.0.0.1:{port}/?prefix={prefix}"))
            .await
            .unwrap();
        store
            .compare_and_set("media/视频", None, b"hello")
            .await
            .unwrap();
        let b = format!("{:02x}", bucket("media/视频"));
        let data = format!("{prefix}{{{b}}}:d:media/视频");
        let index = format!("{prefix}{{{b}}}:i");
        let mut keys: Vec<String> =
            redis_cli(port, &["--scan", "--pattern", &format!("{prefix}*")])
                .lines()
                .map(str::to_owned)
                .collect();
        keys.sort();
        let mut want = vec![data.clone(), index.clone()];
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(redis_cli(port, &["hget", &data, "v"]).trim(), "1");
        assert_eq!(redis_cli(port, &["hget", &data, "d"]).trim(), "hello");
        assert_eq!(
            redis_cli(port, &["zrange", &index, "0", "-1", "withscores"]).trim(),
            "media/视频\n0"
        );

        // Without `prefix`, keys start with the default `ims:`.
        let store = open(&format!("redis://127.0.0.1:{port}")).await.unwrap();
        let key = format!("default-prefix/{}", unique());
        store.compare_and_set(&key, None, b"x").await.unwrap();
        let data = format!("ims:{{{:02x}}}:d:{key}", bucket(&key));
        assert_eq!(redis_cli(port, &["hget", &data, "v"]).trim(), "1");
    });
}

#[test]
fn redis_cluster_spreads_buckets_over_all_masters() {
    run(async {
        let backend = RedisCluster::shared();
        let prefix = format!("spread{}:", unique());
        let store = open(&backend.cluster().url(&prefix)).await.unwrap();
        for i in 0..64 {
            store
                .compare_and_set(&format!("job/{i}"), None, b"x")
                .await
                .unwrap();
        }
        for node in &backend.cluster().nodes {
            let keys = redis_cli(node.port, &["--scan", "--pattern", &format!("{prefix}*")]);
            assert!(
                keys.lines().count() > 0,
                "master on port {} holds none of the keys",
                node.port
            );
        }
        assert_eq!(
            store.list_prefix("job/", None, 1000).await.unwrap().len(),
            64
        );
    });
}

#[test]
fn redis_password_is_never_shown() {
    run(async {
        let server = RedisServer::start(&["--requirepass", "s3cr3t-Pass"]);
        let port = server.port;

        let good = open(&format!(
            "redis://:s3cr3t-Pass@127.0.0.1:{port}/?prefix=pw:"
        ))
        .await
        .unwrap();
        good.compare_and_set("k", None, b"v").await.unwrap();
        assert!(!format!("{good:?}").contains("s3cr3t-Pass"));

        for (url, secrets) in [
            (
                format!("redis://:wr0ng-Secret@127.0.0.1:{port}/"),
                vec!["wr0ng-Secret"],
            ),
            (
                format!("redis://bob:b0b-Secret@127.0.0.1:{port}/"),
                vec!["b0b-Secret"],
            ),
            (
                format!("redis://:p%40ss-Secret@127.0.0.1:{port}/"),
                vec!["p%40ss-Secret", "p@ss-Secret"],
            ),
        ] {
            let store = open(&url).await.unwrap();
            let shown = format!("{store:?}");
            let err = store.health().await.unwrap_err();
            let err2 = store.get("k").await.unwrap_err();
            for text in [shown, format!("{err} {err:?} {err2} {err2:?}")] {
                for secret in &secrets {
                    assert!(!text.contains(secret), "{secret} shown in: {text}");
                }
            }
        }

        for bad in [
            format!("redis://:hunter2-X@127.0.0.1:{port}/?bogus=1"),
            format!("redis://:hunter2-X@127.0.0.1:{port}/?tls_ca=/x.pem"),
            "rediss://:hunter2-X@127.0.0.1:1/?tls_ca=/nonexistent/ca.pem".to_owned(),
            "redis+cluster://:hunter2-X@127.0.0.1:1/5".to_owned(),
            "redis+cluster://:hunter2-X@/".to_owned(),
            "redis://:hunter2-X@[bad/".to_owned(),
            "nonsense://:hunter2-X@127.0.0.1".to_owned(),
            // Unencoded URL delimiters in the password, and a typo in the scheme.
            "redis://:hunter2-X#?/@127.0.0.1:1/".to_owned(),
            "redis+cluster://:hunter2-X#/@127.0.0.1:1".to_owned(),
            "redis:/:hunter2-X@127.0.0.1".to_owned(),
        ] {
            let err = open(&bad).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidConfig(_)),
                "{bad}: {err:?}"
            );
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2-X"), "password shown: {text}");
        }
    });
}

#[test]
fn redis_store_reconnects_after_restart() {
    run(async {
        let server = RedisServer::start(&[]);
        let port = server.port;
        let store = open(&format!("redis://127.0.0.1:{port}/?prefix=re:"))
            .await
            .unwrap();
        store.compare_and_set("k", None, b"1").await.unwrap();
        drop(server); // killed: no persistence, so the data is gone too
        assert!(store.health().await.unwrap_err().is_retryable());
        let _server = RedisServer::start_on(port);
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Err(e) = store.health().await {
            assert!(Instant::now() < deadline, "no reconnect: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            store.compare_and_set("k", None, b"2").await.unwrap(),
            CasOutcome::Written(Version::FIRST)
        );
    });
}

#[test]
fn redis_open_is_lazy_and_health_reports_down() {
    run(async {
        // Nothing listens on these ports: open succeeds, calls fail retryably.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        for spec in [
            format!("redis://127.0.0.1:{port}"),
            format!("redis+cluster://127.0.0.1:{port},127.0.0.1:{port}"),
        ] {
            let store = open(&spec).await.unwrap();
            let err = store.health().await.unwrap_err();
            assert!(err.is_retryable(), "{spec}: {err:?}");
            let err = store.get("k").await.unwrap_err();
            assert!(err.is_retryable(), "{spec}: {err:?}");
        }
    });
}

/// Make a CA and a server certificate for 127.0.0.1 with the openssl CLI.
fn make_certs(dir: &Path) {
    let sh = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl not on PATH");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    sh(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=store-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    ]
    .concat());
    sh(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn rediss_with_custom_ca() {
    run(async {
        let certs = tempfile::tempdir().unwrap();
        make_certs(certs.path());
        let file = |name: &str| certs.path().join(name).display().to_string();
        let server = RedisServer::start_tls(&[
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]);
        let port = server.port;
        let ca = percent_encode(&file("ca.pem"));
        let store = open(&format!(
            "rediss://127.0.0.1:{port}/?prefix=tls:&tls_ca={ca}"
        ))
        .await
        .unwrap();
        store.health().await.unwrap();
        store.compare_and_set("media/x", None, b"1").await.unwrap();
        store
            .compare_and_set("media/x", Some(Version::FIRST), b"2")
            .await
            .unwrap();
        assert_eq!(store.get("media/x").await.unwrap().unwrap().value, b"2");
        assert_eq!(
            store.list_prefix("media/", None, 10).await.unwrap().len(),
            1
        );

        // Certificates are verified: with the public roots only, the
        // self-made CA is not trusted.
        let untrusted = open(&format!("rediss://127.0.0.1:{port}/")).await.unwrap();
        assert!(untrusted.health().await.is_err());
        // And TLS is really in use: plain text to the TLS port gets nowhere.
        let plain = open(&format!("redis://127.0.0.1:{port}/")).await.unwrap();
        assert!(plain.health().await.is_err());
    });
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn store_setting_forms() {
    run(async {
        assert_eq!(open("memory").await.unwrap().kind(), "memory");
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("redb:{}", dir.path().join("s.redb").display());
        assert_eq!(open(&spec).await.unwrap().kind(), "redb");
        assert_eq!(open("redis://127.0.0.1:1").await.unwrap().kind(), "redis");
        assert_eq!(
            open("redis+cluster://127.0.0.1:1,127.0.0.1:2/?prefix=x:")
                .await
                .unwrap()
                .kind(),
            "redis-cluster"
        );
        for bad in [
            "",
            "memory:",
            "redb:",
            "postgres://127.0.0.1/db",
            "redis://127.0.0.1:1/?prefix=%7Bx%7D",
            "redis://127.0.0.1:1/?timeout=5",
            "redis+cluster://127.0.0.1:1/3",
            "redis+cluster://127.0.0.1:1,/",
            "redis+cluster://127.0.0.1/",
        ] {
            let err = open(bad).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidConfig(_)),
                "{bad:?}: {err:?}"
            );
            assert!(!err.is_retryable());
        }
        // A directory that does not exist is a failure to open, not a panic.
        let err = open("redb:/nonexistent-dir/x.redb").await.unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
    });
}

#[test]
fn redb_data_survives_reopen() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("redb:{}", dir.path().join("durable.redb").display());
        {
            let store = open(&spec).await.unwrap();
            store
                .compare_and_set("media/1", None, b"one")
                .await
                .unwrap();
            store
                .compare_and_set("media/1", Some(Version::FIRST), b"two")
                .await
                .unwrap();
        }
        let store = open(&spec).await.unwrap();
        let got = store.get("media/1").await.unwrap().unwrap();
        assert_eq!(
            (got.version, got.value.as_slice()),
            (Version::new(2), &b"two"[..])
        );
    });
}
