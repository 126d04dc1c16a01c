//! A symbolicated minidump written into a Sentry event, and the CLI's JSON.

mod common;

use std::path::PathBuf;

use relay_processing::symbolicate::{
    apply_to_event, referenced_modules, symbolicate_minidump, LocalDirectory, NativeCrash,
    SymbolStore,
};
use serde_json::{json, Value};

fn native_dir() -> PathBuf {
    common::fixture_dir("native")
}

fn linux_crash() -> NativeCrash {
    let dir = native_dir().join("linux-x86_64");
    let store = SymbolStore::new(vec![Box::new(LocalDirectory::scan(&dir).unwrap())], None);
    let bytes = std::fs::read(dir.join("linux.dmp")).unwrap();
    symbolicate_minidump(&bytes, &store, None).unwrap()
}

#[test]
fn event_gets_exception_threads_and_images() {
    let crash = linux_crash();
    let mut event = json!({
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "release": "app@1.0",
        "contexts": {"os": {"type": "os", "name": "Ubuntu"}},
        "debug_meta": {"sdk_info": {"sdk_name": "linux"}},
    });
    apply_to_event(&crash, &mut event);

    // Untouched fields stay; the SDK's OS context is not overwritten.
    assert_eq!(event["release"], "app@1.0");
    assert_eq!(event["contexts"]["os"]["name"], "Ubuntu");
    assert_eq!(event["contexts"]["device"]["arch"], "x86_64");
    assert_eq!(event["debug_meta"]["sdk_info"]["sdk_name"], "linux");
    assert_eq!(event["platform"], "native");
    assert_eq!(event["level"], "fatal");

    let exception = &event["exception"]["values"][0];
    assert!(exception["type"].as_str().unwrap().starts_with("SIGSEGV"));
    assert!(exception["value"].as_str().unwrap().contains("SIGSEGV"));
    assert_eq!(exception["mechanism"]["type"], "minidump");
    assert_eq!(exception["mechanism"]["handled"], false);
    assert_eq!(exception["mechanism"]["data"]["crash_address"], "0x45");
    assert_eq!(exception["thread_id"], 1304);

    // Frames are oldest-first in the event: the crash site is last.
    let frames = exception["stacktrace"]["frames"].as_array().unwrap();
    let n = frames.len();
    assert!(n > 4);
    let last3 = &frames[n - 3..];
    assert_eq!(last3[2]["function"], "crash");
    assert_eq!(last3[2]["lineno"], 23);
    assert_eq!(last3[2]["data"]["inlined"], true);
    assert_eq!(last3[1]["function"], "start");
    assert_eq!(last3[0]["function"], "main");
    assert_eq!(last3[0]["filename"], "main.cpp");
    assert_eq!(last3[0]["lineno"], 35);
    for frame in last3 {
        assert_eq!(frame["instruction_addr"], "0x401d72");
        assert_eq!(frame["package"], "/work/linux/build/crash");
        assert_eq!(frame["status"], "symbolicated");
        assert_eq!(frame["trust"], "context");
    }
    let libc = &frames[n - 4];
    assert_eq!(libc["status"], "missing_symbol");
    assert_eq!(libc["trust"], "cfi");
    assert!(libc.get("function").is_none());
    assert_eq!(
        exception["stacktrace"]["registers"]["rip"], "0x401d72",
        "registers of the crashing frame"
    );

    let threads = event["threads"]["values"].as_array().unwrap();
    assert_eq!(threads.len(), crash.threads.len());
    let crashed = threads
        .iter()
        .filter(|t| t["crashed"] == true)
        .collect::<Vec<_>>();
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0]["id"], 1304);
    assert_eq!(
        crashed[0]["stacktrace"]["frames"],
        exception["stacktrace"]["frames"]
    );

    let images = event["debug_meta"]["images"].as_array().unwrap();
    assert_eq!(images.len(), crash.modules.len());
    let exe = images
        .iter()
        .find(|i| i["code_file"] == "/work/linux/build/crash")
        .unwrap();
    assert_eq!(exe["type"], "elf");
    assert_eq!(exe["debug_id"], "c0bcc3f1-9827-fe65-3058-404b2831d9e6");
    assert_eq!(exe["code_id"], "f1c3bcc0279865fe3058404b2831d9e64135386c");
    assert_eq!(exe["image_addr"], "0x400000");
    assert!(exe["image_size"].as_u64().unwrap() > 0);
    assert_eq!(exe["debug_status"], "found");
    assert_eq!(exe["unwind_status"], "found");
    let libc = images
        .iter()
        .find(|i| i["code_file"].as_str().unwrap().contains("libc-2.23"))
        .unwrap();
    assert_eq!(libc["debug_status"], "missing");
}

#[test]
fn cli_json_has_the_crashing_thread_first() {
    let crash = linux_crash();
    let json = crash.to_json();
    assert_eq!(json["crashed"], true);
    assert!(json["crash_reason"]
        .as_str()
        .unwrap()
        .starts_with("SIGSEGV"));
    assert_eq!(json["crash_address"], "0x45");
    let threads = json["threads"].as_array().unwrap();
    assert_eq!(threads[0]["crashed"], true);
    assert!(threads[1..].iter().all(|t| t["crashed"] == false));
    let frames = threads[0]["frames"].as_array().unwrap();
    // Innermost first.
    assert_eq!(frames[0]["function"], "crash");
    assert_eq!(frames[2]["function"], "main");
    for key in [
        "instruction_addr",
        "module",
        "function",
        "filename",
        "lineno",
        "trust",
        "status",
    ] {
        assert!(frames[0].get(key).is_some(), "frame has {key}");
    }
    assert!(json["modules"].as_array().unwrap().len() > 1);
    assert_eq!(threads.len(), crash.threads.len());
    let _: &Value = &json["modules"][0]["debug_status"];
}

#[test]
fn referenced_modules_lists_ids_for_downloaders() {
    let bytes = std::fs::read(native_dir().join("windows-x86/windows.dmp")).unwrap();
    let modules = referenced_modules(&bytes).unwrap();
    let exe = modules
        .iter()
        .find(|m| m.code_file.ends_with("crash.exe"))
        .unwrap();
    assert_eq!(
        exe.debug_file.as_deref(),
        Some("C:\\projects\\breakpad-tools\\windows\\Release\\crash.pdb")
    );
    assert_eq!(
        exe.debug_id.unwrap().breakpad().to_string(),
        "3249D99D0C4049318610F4E4FB0B69361"
    );
    assert_eq!(exe.code_id.as_ref().unwrap().as_str(), "5ab380779000");
    assert!(referenced_modules(b"garbage").is_err());
}
