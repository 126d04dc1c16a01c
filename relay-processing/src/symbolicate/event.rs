//! Output of a [`NativeCrash`]: Sentry's event protocol and the CLI's JSON.

use serde_json::{json, Map, Value};

use super::{CutOff, NativeCrash, NativeFrame, NativeModule, NativeThread};

/// Writes the crash into a Sentry event (a JSON object).
///
/// - `exception.values`: one exception whose type is the crash reason (or `Minidump` for a dump
///   written without a crash), a `mechanism` of type `minidump` carrying the crash address, and
///   the crashing thread's stack trace.
/// - `threads.values`: every thread with its stack trace; the crashing one has `crashed`.
/// - `debug_meta.images`: every module with its ids and `debug_status`/`unwind_status`.
/// - `contexts.os` and `contexts.device.arch` when the event lacks them, `platform` `native`
///   and `level` `fatal` for a crash when unset.
/// - `errors`: one `{"type": "native_walk_cut_off", "reason", "details"}` for each bound that cut
///   the walk short ([`NativeCrash::cut_off`]), added to those already there.
///
/// Frames are oldest-first in the event (Sentry's order). Anything else in the event is kept;
/// `exception`, `threads` and `debug_meta.images` are replaced. A non-object `event` is left
/// alone.
pub fn apply_to_event(crash: &NativeCrash, event: &mut Value) {
    apply_to_event_within(crash, event, usize::MAX);
}

/// [`apply_to_event`] writing at most `max_frames` frames per stack trace: the oldest and the
/// newest halves, with `frames_omitted` naming the range left out, as normalization trims
/// (`processing.normalize.max_frames`). Normalization runs before symbolication, so without
/// this a deep walk would be published whole.
pub fn apply_to_event_within(crash: &NativeCrash, event: &mut Value, max_frames: usize) {
    let Some(event) = event.as_object_mut() else {
        return;
    };
    let crashing = crash.crashing_thread();

    let reason = crash.crash_reason.clone();
    let exception_type = reason.clone().unwrap_or_else(|| "Minidump".to_owned());
    let value = match (&reason, &crash.assertion) {
        (_, Some(assertion)) => assertion.clone(),
        (Some(reason), None) => format!("Fatal Error: {reason}"),
        (None, None) => "Minidump without a crash".to_owned(),
    };
    let mut mechanism = json!({
        "type": "minidump",
        "handled": false,
        "synthetic": true,
    });
    if let Some(address) = crash.crash_address {
        mechanism["data"] = json!({ "crash_address": hex(address) });
    }
    let mut exception = json!({
        "type": exception_type,
        "value": value,
        "mechanism": mechanism,
    });
    if let Some(thread) = crashing {
        exception["thread_id"] = json!(thread.id);
        exception["stacktrace"] = event_stacktrace(thread, crash, max_frames);
    }
    event.insert("exception".into(), json!({ "values": [exception] }));

    let threads = crash
        .threads
        .iter()
        .map(|thread| {
            let mut value = json!({
                "id": thread.id,
                "crashed": thread.crashed,
                "current": thread.crashed,
                "stacktrace": event_stacktrace(thread, crash, max_frames),
            });
            if let Some(name) = &thread.name {
                value["name"] = json!(name);
            }
            value
        })
        .collect::<Vec<_>>();
    event.insert("threads".into(), json!({ "values": threads }));

    let images = crash.modules.iter().map(event_image).collect::<Vec<_>>();
    let debug_meta = event
        .entry("debug_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !debug_meta.is_object() {
        *debug_meta = Value::Object(Map::new());
    }
    debug_meta["images"] = Value::Array(images);

    let contexts = event
        .entry("contexts")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(contexts) = contexts.as_object_mut() {
        contexts.entry("os").or_insert_with(|| {
            let mut os = json!({ "type": "os", "name": crash.system.os_name });
            if let Some(version) = &crash.system.os_version {
                os["version"] = json!(version);
            }
            if let Some(build) = &crash.system.os_build {
                os["build"] = json!(build);
            }
            os
        });
        let device = contexts
            .entry("device")
            .or_insert_with(|| json!({ "type": "device" }));
        if let Some(device) = device.as_object_mut() {
            device
                .entry("arch")
                .or_insert_with(|| json!(crash.system.cpu_arch));
        }
    }
    event.entry("platform").or_insert_with(|| json!("native"));
    if crash.crashed {
        event.entry("level").or_insert_with(|| json!("fatal"));
    }
    note_cut_offs(crash, event);
}

/// Records in the event's `errors` (where Sentry's protocol keeps processing problems) each
/// bound that cut the walk short, with the threads it cut.
fn note_cut_offs(crash: &NativeCrash, event: &mut Map<String, Value>) {
    if crash.cut_off.is_empty() {
        return;
    }
    let errors = event.entry("errors").or_insert_with(|| json!([]));
    if !errors.is_array() {
        *errors = json!([]);
    }
    let Some(errors) = errors.as_array_mut() else {
        return;
    };
    for cut in &crash.cut_off {
        let threads = crash
            .threads
            .iter()
            .filter(|t| t.cut_off == Some(*cut))
            .count();
        let details = match cut {
            CutOff::Threads => "the dump has more threads than symbolication.max_threads; \
                                the rest were left out"
                .to_owned(),
            _ => format!(
                "{threads} thread(s) walked only in part: {}",
                cut.describe()
            ),
        };
        errors.push(json!({
            "type": "native_walk_cut_off",
            "reason": cut.as_str(),
            "details": details,
        }));
    }
}

fn event_stacktrace(thread: &NativeThread, crash: &NativeCrash, max_frames: usize) -> Value {
    let total = thread.frames.len();
    let (head, tail) = match total > max_frames && max_frames > 0 {
        true => (max_frames / 2, max_frames - max_frames / 2),
        false => (total, 0),
    };
    // Oldest first: the first `head` and the last `tail` of the reversed list.
    let oldest_first = thread.frames.iter().rev();
    let frames = oldest_first
        .clone()
        .take(head)
        .chain(oldest_first.skip(total - tail).take(tail))
        .map(|frame| event_frame(frame, crash))
        .collect::<Vec<_>>();
    let registers = thread
        .registers
        .iter()
        .map(|(name, value)| (name.clone(), json!(hex(*value))))
        .collect::<Map<_, _>>();
    let mut stacktrace = json!({ "frames": frames, "registers": registers });
    if head + tail < total {
        stacktrace["frames_omitted"] = json!([head, total - tail]);
    }
    stacktrace
}

fn event_frame(frame: &NativeFrame, crash: &NativeCrash) -> Value {
    let mut out = Map::new();
    out.insert(
        "instruction_addr".into(),
        json!(hex(frame.instruction_addr)),
    );
    if let Some(module) = frame.module.and_then(|i| crash.modules.get(i)) {
        out.insert("package".into(), json!(module.code_file));
        out.insert("image_addr".into(), json!(hex(module.image_addr)));
    }
    insert_opt(
        &mut out,
        "function",
        frame.function.as_deref().map(Value::from),
    );
    insert_opt(
        &mut out,
        "symbol_addr",
        frame.symbol_addr.map(|a| json!(hex(a))),
    );
    insert_opt(
        &mut out,
        "filename",
        frame.filename.as_deref().map(Value::from),
    );
    insert_opt(
        &mut out,
        "abs_path",
        frame.abs_path.as_deref().map(Value::from),
    );
    insert_opt(&mut out, "lineno", frame.lineno.map(Value::from));
    out.insert("trust".into(), json!(frame.trust));
    out.insert("status".into(), json!(frame.status.as_str()));
    if frame.inlined {
        out.insert("data".into(), json!({ "inlined": true }));
    }
    Value::Object(out)
}

fn event_image(module: &NativeModule) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(module.image_type));
    insert_opt(
        &mut out,
        "debug_id",
        module.debug_id.as_deref().map(Value::from),
    );
    insert_opt(
        &mut out,
        "code_id",
        module.code_id.as_deref().map(Value::from),
    );
    out.insert("code_file".into(), json!(module.code_file));
    insert_opt(
        &mut out,
        "debug_file",
        module.debug_file.as_deref().map(Value::from),
    );
    out.insert("image_addr".into(), json!(hex(module.image_addr)));
    out.insert("image_size".into(), json!(module.image_size));
    out.insert("debug_status".into(), json!(module.debug_status.as_str()));
    out.insert("unwind_status".into(), json!(module.unwind_status.as_str()));
    Value::Object(out)
}

impl NativeCrash {
    /// The offline CLI's JSON: crashing thread first, frames innermost first.
    ///
    /// `{"crashed", "crash_reason", "crash_address", "threads": [{"id", "crashed", "frames":
    /// [{"instruction_addr", "module", "function", "filename", "lineno", "trust", "status"}]}],
    /// "modules": [...]}`
    pub fn to_json(&self) -> Value {
        let mut threads = self.threads.iter().collect::<Vec<_>>();
        // Stable: the crashing thread moves to the front, the others keep dump order.
        threads.sort_by_key(|t| !t.crashed);
        let threads = threads
            .into_iter()
            .map(|thread| {
                let frames = thread
                    .frames
                    .iter()
                    .map(|frame| {
                        json!({
                            "instruction_addr": hex(frame.instruction_addr),
                            "module": frame.package,
                            "function": frame.function,
                            "filename": frame.filename,
                            "abs_path": frame.abs_path,
                            "lineno": frame.lineno,
                            "inlined": frame.inlined,
                            "trust": frame.trust,
                            "status": frame.status.as_str(),
                        })
                    })
                    .collect::<Vec<_>>();
                json!({
                    "id": thread.id,
                    "name": thread.name,
                    "crashed": thread.crashed,
                    "frames": frames,
                    "cut_off": thread.cut_off.map(CutOff::as_str),
                })
            })
            .collect::<Vec<_>>();
        let modules = self
            .modules
            .iter()
            .map(|module| {
                let mut value = event_image(module);
                value["debug_path"] = json!(module.debug_path);
                value["unwind_path"] = json!(module.unwind_path);
                value
            })
            .collect::<Vec<_>>();
        json!({
            "crashed": self.crashed,
            "crash_reason": self.crash_reason,
            "crash_address": self.crash_address.map(hex),
            "assertion": self.assertion,
            "os": {
                "name": self.system.os_name,
                "version": self.system.os_version,
                "build": self.system.os_build,
            },
            "cpu_arch": self.system.cpu_arch,
            "threads": threads,
            "modules": modules,
            "cut_off": self.cut_off.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        })
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// Sentry's address notation: `0x` and lowercase hex without padding.
pub(crate) fn hex(value: u64) -> String {
    format!("{value:#x}")
}
