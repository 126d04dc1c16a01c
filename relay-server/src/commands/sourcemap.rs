//! `relay sourcemap`: resolve minified positions through a source map, offline.
//!
//! Positions are `LINE:COL`, 1-based both (columns in UTF-16 code units), as JavaScript engines
//! and SDK frames report them; results are 1-based too. Text output is one line per position:
//!
//! ```text
//! 1:183   test.js:20:5    test    (token: invoke)
//! ```
//!
//! With `--json`, one JSON array with one object per position, in input order:
//! `{"input": "1:183", "source": "test.js", "line": 20, "col": 5, "name": "invoke",
//! "function": "test"}`. `source`/`line`/`col` are `null` for an unmapped position, `name` is
//! the map's token name, `function` the enclosing scope's name (needs `--minified`, except for
//! Hermes maps, which carry scopes).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use relay_processing::sourcemap::SourceMapView;

/// Arguments of `relay sourcemap`.
#[derive(Debug, clap::Args)]
pub struct SourcemapArgs {
    /// The source map (regular, index map with sections, or Hermes/Metro).
    map: PathBuf,
    /// Minified positions, `LINE:COL`, both 1-based.
    #[arg(required = true, value_name = "LINE:COL")]
    positions: Vec<String>,
    /// The minified file, for the names of enclosing functions (scopes).
    #[arg(long)]
    minified: Option<PathBuf>,
    /// Print a JSON array instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `relay sourcemap`.
pub fn run(args: SourcemapArgs) -> anyhow::Result<()> {
    let positions = args
        .positions
        .iter()
        .map(|p| parse_position(p).map(|pos| (p.as_str(), pos)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let map = std::fs::read_to_string(&args.map)
        .with_context(|| format!("reading {}", args.map.display()))?;
    let minified = match &args.minified {
        Some(path) => Some(
            String::from_utf8_lossy(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .into_owned(),
        ),
        None => None,
    };
    let view = SourceMapView::build(minified.as_deref(), &map)
        .with_context(|| format!("building {}", args.map.display()))?;

    let results: Vec<Resolved> = positions
        .iter()
        .map(|(input, (line, col))| {
            let location = view.lookup(*line, *col);
            Resolved {
                input,
                source: location.as_ref().and_then(|l| l.source.clone()),
                line: location.as_ref().map(|l| l.line),
                col: location.as_ref().map(|l| l.col),
                name: location.as_ref().and_then(|l| l.name.clone()),
                function: location
                    .as_ref()
                    .and_then(|l| l.function().map(str::to_owned)),
            }
        })
        .collect();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    for result in &results {
        let (Some(line), Some(col)) = (result.line, result.col) else {
            println!("{}\t(unmapped)", result.input);
            continue;
        };
        let mut text = format!(
            "{}\t{}:{line}:{col}\t{}",
            result.input,
            result.source.as_deref().unwrap_or("-"),
            result.function.as_deref().unwrap_or("-"),
        );
        if let Some(name) = &result.name {
            text.push_str(&format!("\t(token: {name})"));
        }
        println!("{text}");
    }
    Ok(())
}

/// One resolved position, as printed with `--json`.
#[derive(Debug, serde::Serialize)]
struct Resolved<'a> {
    input: &'a str,
    source: Option<String>,
    line: Option<u32>,
    col: Option<u32>,
    name: Option<String>,
    function: Option<String>,
}

/// Parses `LINE:COL`, both 1-based.
fn parse_position(text: &str) -> anyhow::Result<(u32, u32)> {
    let Some((line, col)) = text.split_once(':') else {
        bail!("position {text:?} is not LINE:COL");
    };
    let line: u32 = line
        .trim()
        .parse()
        .with_context(|| format!("line in {text:?}"))?;
    let col: u32 = col
        .trim()
        .parse()
        .with_context(|| format!("column in {text:?}"))?;
    if line == 0 || col == 0 {
        bail!("position {text:?}: lines and columns are 1-based");
    }
    Ok((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        assert_eq!(parse_position("1:183").unwrap(), (1, 183));
        assert!(parse_position("0:5").is_err());
        assert!(parse_position("1:0").is_err());
        assert!(parse_position("12").is_err());
        assert!(parse_position("a:1").is_err());
    }
}
