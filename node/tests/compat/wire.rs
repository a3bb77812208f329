//! The HTTP and JSON-RPC wire format (MULTICHAIN.md §1.5): authentication, statuses, the reply
//! envelope, ids, batches, the request-size limit, many concurrent clients, and `stop`.

use crate::harness::{
    IO_TIMEOUT, Node, RpcErr, basic, check_envelope, connect, exchange, read_reply, request_bytes,
};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

fn post_with_auth(node: &Node, auth: Option<String>, body: &str) -> crate::harness::Reply {
    let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("Authorization", a)).collect();
    exchange(
        node.rpc.port,
        &request_bytes("POST", "/", &headers, body.as_bytes()),
    )
}

#[test]
fn authentication_is_basic_with_multichainrpc_and_a_401_otherwise() {
    let node = Node::create("auth");
    assert_eq!(node.rpc.user, "multichainrpc", "wattle.conf rpcuser");
    let body = r#"{"method":"getblockcount","params":[],"id":1}"#;

    let good = post_with_auth(&node, Some(node.rpc.auth()), body);
    assert_eq!(good.status, 200, "{good:?}");

    let wrong_password = basic("multichainrpc", &format!("{}x", node.rpc.password));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("a wrong password", Some(wrong_password)),
        (
            "a wrong user",
            Some(basic("multichain", &node.rpc.password)),
        ),
        ("an empty password", Some(basic("multichainrpc", ""))),
        ("not Basic", Some(format!("Bearer {}", node.rpc.password))),
        ("bad base64", Some("Basic %%%not-base64%%%".to_string())),
    ];
    for (what, auth) in cases {
        let with_header = auth.is_some();
        let t0 = Instant::now();
        let r = post_with_auth(&node, auth, body);
        let took = t0.elapsed();
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"jsonrpc\""),
            "{what}: {r:?}"
        );
        assert!(
            !r.body.contains("\"result\""),
            "{what}: a 401 must not run the call: {r:?}"
        );
        if with_header {
            // MultiChain (Bitcoin) sleeps 250 ms before answering a bad password.
            assert!(
                took >= Duration::from_millis(200),
                "{what}: answered in {took:?}, expected the 250 ms delay"
            );
        }
    }
    // Still serving with the right password afterwards.
    assert_eq!(
        node.height(),
        node.ok("getinfo", json!([]))["blocks"].as_u64().unwrap()
    );
}

#[test]
fn statuses_envelope_ids_and_request_checks() {
    let node = Node::create("statuses");
    let ep = &node.rpc;
    let auth = vec![("Authorization", ep.auth())];
    let post = |body: &str| ep.post(body);

    // Success: 200, JSON, newline-terminated, {result, error:null, id}.
    let r = post(r#"{"method":"getblockcount","params":[],"id":7,"chain_name":"compat"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.body.ends_with('\n'), "{:?}", r.body);
    let server = r.header("server").unwrap_or_default().to_string();
    assert!(
        server.contains("json-rpc/"),
        "Server header should be <product>-json-rpc/<version>, got {server:?}"
    );
    let h = check_envelope("getblockcount", &r.json(), &json!(7), Some(r.status)).unwrap();
    assert!(h.is_u64(), "{h}");

    // Any path is accepted.
    let r = exchange(
        ep.port,
        &request_bytes(
            "POST",
            "/some/other/path?x=1",
            &auth,
            br#"{"method":"getblockcount","params":[],"id":1}"#,
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    check_envelope("path", &r.json(), &json!(1), Some(r.status)).unwrap();

    // Only POST (2.x answers 405).
    let r = exchange(ep.port, &request_bytes("GET", "/", &auth, b""));
    assert_eq!(r.status, 405, "{r:?}");

    // The id is echoed whatever its type; no id means null.
    for id in [
        json!("abc"),
        json!(12345678),
        json!("12345678-1700000000"),
        json!(1.5),
        json!({"x": [1, 2]}),
        json!([1, "two"]),
        json!(null),
        json!(-1),
    ] {
        let body = json!({"method": "getblockcount", "params": [], "id": id});
        let r = post(&body.to_string());
        check_envelope(&format!("id {id}"), &r.json(), &id, Some(r.status)).unwrap();
    }
    for body in [
        r#"{"method":"getblockcount","params":[]}"#,
        r#"{"method":"getblockcount"}"#,
        r#"{"method":"getblockcount","params":null}"#,
        r#"{"params":[],"method":"getblockcount","chain_name":"compat"}"#,
    ] {
        let r = post(body);
        let v = check_envelope(body, &r.json(), &Value::Null, Some(r.status))
            .unwrap_or_else(|e| panic!("{body}: {e:?}"));
        assert!(v.is_u64(), "{body}: {v}");
    }
    // Missing params is [] for commands that need some: the usage text.
    let r = post(r#"{"method":"getaddressbalances","id":3}"#);
    let e = check_envelope("no params", &r.json(), &json!(3), Some(r.status)).unwrap_err();
    let usage = ep.ok("help", json!(["getaddressbalances"]));
    assert_eq!(
        e,
        RpcErr {
            code: -1,
            message: usage.as_str().unwrap().to_string()
        }
    );

    // 404: unknown method.
    let r = post(r#"{"method":"nosuchcommand","params":[],"id":"u"}"#);
    assert_eq!(r.status, 404, "{r:?}");
    let e = check_envelope("unknown", &r.json(), &json!("u"), Some(r.status)).unwrap_err();
    assert_eq!(
        e,
        RpcErr {
            code: -32601,
            message: "Method not found".into()
        }
    );

    // 400: invalid requests.
    for (body, id, message) in [
        (
            r#"{"method":"getinfo","params":[],"id":4,"chain_name":"otherchain"}"#,
            json!(4),
            "Wrong chain name",
        ),
        (
            r#"{"method":"getinfo","params":{"a":1},"id":5}"#,
            json!(5),
            "Params must be an array",
        ),
        (
            r#"{"method":"getinfo","params":"x","id":6}"#,
            json!(6),
            "Params must be an array",
        ),
        (
            r#"{"method":5,"params":[],"id":7}"#,
            json!(7),
            "Method must be a string",
        ),
        (r#"{"params":[],"id":8}"#, json!(8), "Missing method"),
        ("5", Value::Null, "Invalid Request object"),
        (r#""getinfo""#, Value::Null, "Invalid Request object"),
    ] {
        let r = post(body);
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let e = check_envelope(body, &r.json(), &id, Some(r.status)).unwrap_err();
        assert_eq!(
            e,
            RpcErr {
                code: -32600,
                message: message.into()
            },
            "{body}"
        );
    }

    // 500 with -32700: the body is not JSON.
    for body in ["{not json", "", "{\"method\":\"getinfo\",", "\u{1}\u{2}"] {
        let r = post(body);
        assert_eq!(r.status, 500, "{body:?}: {r:?}");
        let e = check_envelope(body, &r.json(), &Value::Null, Some(r.status)).unwrap_err();
        assert_eq!(
            e,
            RpcErr {
                code: -32700,
                message: "Parse error".into()
            },
            "{body:?}"
        );
    }

    // 500: any other error, with the JSON body.
    let r = post(r#"{"method":"getblockhash","params":[999999],"id":9}"#);
    assert_eq!(r.status, 500, "{r:?}");
    let e = check_envelope("getblockhash", &r.json(), &json!(9), Some(r.status)).unwrap_err();
    assert_eq!(e.code, -8, "{e:?}");
}

#[test]
fn batches_answer_an_array_in_order() {
    let node = Node::create("batch");
    let ep = &node.rpc;
    let height = ep.height();
    let body = json!([
        {"method": "getblockcount", "params": [], "id": 1},
        {"method": "nosuchcommand", "params": [], "id": 2},
        {"method": "help", "params": ["getinfo"]},
        {"method": "getinfo", "params": [], "id": "four", "chain_name": "wrongchain"},
        "not an object",
        {"method": "getblockhash", "params": [0], "id": [6]},
        {"method": "getinfo", "params": [1], "id": 7},
    ]);
    let r = ep.post(&body.to_string());
    assert_eq!(r.status, 200, "a batch is HTTP 200: {r:?}");
    let replies = r.json();
    let replies = replies.as_array().expect("a batch answers an array");
    assert_eq!(replies.len(), 7, "{replies:?}");
    let n = check_envelope("batch 1", &replies[0], &json!(1), None).unwrap();
    assert!(n.as_u64().unwrap() >= height);
    let e = check_envelope("batch 2", &replies[1], &json!(2), None).unwrap_err();
    assert_eq!(e.code, -32601);
    let help = check_envelope("batch 3", &replies[2], &Value::Null, None).unwrap();
    assert_eq!(help, ep.ok("help", json!(["getinfo"])));
    let e = check_envelope("batch 4", &replies[3], &json!("four"), None).unwrap_err();
    assert_eq!(
        e,
        RpcErr {
            code: -32600,
            message: "Wrong chain name".into()
        }
    );
    let e = check_envelope("batch 5", &replies[4], &Value::Null, None).unwrap_err();
    assert_eq!(e.code, -32600);
    let hash = check_envelope("batch 6", &replies[5], &json!([6]), None).unwrap();
    assert_eq!(hash, ep.ok("getblockhash", json!([0])));
    let e = check_envelope("batch 7", &replies[6], &json!(7), None).unwrap_err();
    assert_eq!(e.code, -1);

    // An empty batch answers an empty array.
    let r = ep.post("[]");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn a_20_mb_body_is_refused_and_the_node_keeps_serving() {
    let node = Node::create("bigbody");
    let ep = node.rpc.clone();
    const SIZE: usize = 20 * 1024 * 1024;
    let mut stream = connect(ep.port);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\nAuthorization: {}\r\n\r\n",
        ep.auth()
    );
    stream
        .write_all(head.as_bytes())
        .expect("write the headers");
    // Stream the body from another thread while this one waits for the answer: the server may
    // answer (and close) before it has read everything.
    let mut writer = stream.try_clone().expect("clone the stream");
    let upload = std::thread::spawn(move || {
        let prefix = br#"{"method":"help","params":[""#;
        let mut sent = 0usize;
        let chunk = vec![b'a'; 64 * 1024];
        if writer.write_all(prefix).is_err() {
            return sent;
        }
        sent += prefix.len();
        while sent < SIZE {
            let n = chunk.len().min(SIZE - sent);
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        sent
    });
    let t0 = Instant::now();
    let reply = read_reply(&mut stream).expect("the node answers a 20 MB body");
    assert_eq!(reply.status, 413, "{} {:?}", reply.status, reply.headers);
    assert!(t0.elapsed() < IO_TIMEOUT);
    drop(stream);
    let _ = upload.join();

    // The node keeps serving, at once and correctly.
    let info = ep.ok("getinfo", json!([]));
    assert_eq!(info["chainname"], "compat");
    assert!(ep.height() >= info["blocks"].as_u64().unwrap());
    // A body just under a few megabytes is still fine (a large batch).
    let batch: Vec<Value> = (0..20_000)
        .map(|i| json!({"method": "getblockcount", "params": [], "id": i}))
        .collect();
    let r = ep.post(&Value::Array(batch).to_string());
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().map(Vec::len), Some(20_000));
}

#[test]
fn fifty_concurrent_clients_all_get_correct_answers() {
    let node = Node::create("concurrent");
    let ep = node.rpc.clone();
    let me = ep.address();
    let commands = [
        "getinfo",
        "getblockcount",
        "listaddresses",
        "issue",
        "sendasset",
        "decoderawexchange",
        "getmultibalances",
        "listpermissions",
        "preparelockunspent",
        "help",
    ];
    let helps: Vec<String> = commands
        .iter()
        .map(|c| ep.ok("help", json!([c])).as_str().unwrap().to_string())
        .collect();
    let perms = ep.ok("listpermissions", json!(["*", me]));
    let start_height = ep.height();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = (0..50usize)
        .map(|t| {
            let ep = ep.clone();
            let me = me.clone();
            let helps = helps.clone();
            let perms = perms.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..4 {
                    let k = (t + round) % commands.len();
                    // Each answer must be this request's: the help text of the command asked.
                    assert_eq!(ep.ok("help", json!([commands[k]])), json!(helps[k]));
                    let h = ep.height();
                    assert!(h >= start_height, "height went back: {h} < {start_height}");
                    assert_eq!(ep.ok("listpermissions", json!(["*", me])), perms);
                    let e = ep.fail("getaddressbalances", json!([format!("bad{t}x{round}")]));
                    assert_eq!(
                        e,
                        RpcErr {
                            code: -5,
                            message: format!("Invalid address: bad{t}x{round}")
                        }
                    );
                    let e = ep.fail(&format!("nosuch{t}"), json!([]));
                    assert_eq!(e.code, -32601);
                }
                t
            })
        })
        .collect();
    let mut done = Vec::new();
    for th in threads {
        done.push(th.join().expect("a client thread failed"));
    }
    assert_eq!(done.len(), 50);
    assert!(ep.ok("getinfo", json!([]))["blocks"].as_u64().unwrap() >= start_height);
}

#[test]
fn stop_answers_then_the_node_exits() {
    let mut node = Node::create("stop");
    let usage = node.ok("help", json!(["stop"]));
    // stop takes at most one (ignored, Bitcoin's deprecated `detach`) argument, as in MultiChain.
    node.expect_err("stop", json!([true, 1]), -1, usage.as_str().unwrap());
    assert!(node.running());
    let mut detach = Node::create("stop-detach");
    for n in [&mut node, &mut detach] {
        let params = if n.label == "stop" {
            json!([])
        } else {
            json!([true])
        };
        assert_eq!(n.ok("stop", params), json!("MultiChain server stopping"));
        let status = n.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "{}: wattled exited with {status}",
            n.label
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", n.rpc.port)).is_err(),
            "{}: the RPC port still accepts connections after stop",
            n.label
        );
    }
}
