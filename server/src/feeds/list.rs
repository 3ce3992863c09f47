//! Pulling an IOC list (`lines` or `csv`): the entries become indicators, and what
//! changed since the last pull is stored (see [`crate::feeds::indicators`]).

use crate::config::FeedFormat;
use crate::feeds::checkpoint::Checkpoint;
use crate::feeds::error::FeedError;
use crate::feeds::indicators::{reconcile, ListState};
use crate::feeds::lists::{parse_csv, parse_lines};
use crate::feeds::pull::Pull;
use crate::feeds::sink::PullReport;
use crate::stix::timestamp::now_us;
use crate::store::{validate_object, AddObjects, NewObject, StatusDetail};

const ACCEPT: &str = "text/plain, text/csv;q=0.9, */*;q=0.5";

/// Pull the list and store the indicator versions its changes make.
pub async fn pull(
    pull: &Pull<'_>,
    mut state: ListState,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let fetched = pull.upstream.get(&pull.feed.url, ACCEPT, &[]).await?;
    match fetched.status {
        200..=299 => {}
        401 | 403 => return Err(FeedError::Unauthorized(fetched.status)),
        s => return Err(FeedError::Status(s)),
    }
    let text = String::from_utf8_lossy(&fetched.body);
    let list = match pull.feed.format {
        FeedFormat::Csv => parse_csv(&text, pull.feed.csv_column.unwrap_or(1)),
        _ => parse_lines(&text),
    };
    drop(fetched);
    report.fetched += list.entries.len() as u64 + list.rejected;
    report.rejected += list.rejected;
    let changed = reconcile(pull.feed, &mut state, &list, now_us());
    let mut request = AddObjects::default();
    for value in changed {
        let raw = value.to_string();
        match validate_object(value, None) {
            Ok(object) => request.objects.push(NewObject { object, raw }),
            Err(e) => request.failures.push(StatusDetail {
                id: e.id,
                version: e.version,
                message: Some(e.message),
            }),
        }
    }
    // Counted as fetched above (as list entries), not again as objects.
    let before = report.fetched;
    pull.sink.store(request, report).await?;
    report.fetched = before;
    pull.save(&Checkpoint::List(state)).await
}
