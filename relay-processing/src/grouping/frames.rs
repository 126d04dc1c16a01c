//! Which frames count for grouping: the exceptions' stack traces, else the crashed thread's,
//! in-app frames only when there are any.

use serde_json::Value;

use super::names::{normalize_file, normalize_function, normalize_module};

pub(super) fn exception_values(event: &Value) -> &[Value] {
    let list = match event.get("exception") {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(container)) => container.get("values").and_then(Value::as_array),
        _ => None,
    };
    list.map(Vec::as_slice).unwrap_or_default()
}

pub(super) fn is_synthetic(exception: &Value) -> bool {
    exception
        .get("mechanism")
        .and_then(|m| m.get("synthetic"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub(super) fn frames_of(stacktrace: Option<&Value>) -> &[Value] {
    stacktrace
        .and_then(|st| st.get("frames"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(super) fn crashed_thread_frames(event: &Value) -> &[Value] {
    let threads = match event.get("threads") {
        Some(Value::Array(list)) => list.as_slice(),
        Some(Value::Object(container)) => container
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        _ => &[],
    };
    let crashed = threads
        .iter()
        .find(|t| t.get("crashed").and_then(Value::as_bool) == Some(true))
        .or(if threads.len() == 1 {
            threads.first()
        } else {
            None
        });
    frames_of(crashed.and_then(|t| t.get("stacktrace")))
}

/// The frames that count: in-app ones, or all when the SDK marked none in-app (native
/// crashes leave `in_app` unset).
pub(super) fn grouping_frames(frames: &[Value]) -> Vec<&Value> {
    let in_app: Vec<&Value> = frames
        .iter()
        .filter(|f| f.get("in_app").and_then(Value::as_bool) == Some(true))
        .collect();
    if in_app.is_empty() {
        frames.iter().collect()
    } else {
        in_app
    }
}

pub(super) fn frame_components(frames: &[Value]) -> Vec<String> {
    let mut components: Vec<String> = Vec::new();
    for frame in grouping_frames(frames) {
        let Some(component) = frame_component(frame) else {
            continue;
        };
        // Direct recursion of any depth counts once.
        if components.last() != Some(&component) {
            components.push(component);
        }
    }
    components
}

/// `frame:<module>:<function>`, `frame:<function>`, or `frame:<module>:?` for a frame
/// without a known function (module, else file name, else native package).
fn frame_component(frame: &Value) -> Option<String> {
    let text = |key: &str| {
        frame
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let function = ["function", "raw_function"]
        .iter()
        .find_map(|key| text(key).and_then(normalize_function));
    let module = text("module").map(normalize_module);
    match (module, function) {
        (Some(module), Some(function)) => Some(format!("frame:{module}:{function}")),
        (None, Some(function)) => Some(format!("frame:{function}")),
        (Some(module), None) => Some(format!("frame:{module}:?")),
        (None, None) => {
            let file = text("filename")
                .or_else(|| text("abs_path"))
                .or_else(|| text("package"))?;
            Some(format!("frame:{}:?", normalize_file(file)))
        }
    }
}
