//! The function's own metrics, in CloudWatch's embedded metric format: one JSON log line per
//! report, which CloudWatch Logs turns into metrics. No SDK call and no extra permission.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::report::{CutoffStatus, InstanceReport, Outcome, Report};
use crate::rules::Action;

/// The metric names, as they appear in CloudWatch.
pub const FINDINGS_HANDLED: &str = "FindingsHandled";
pub const FINDINGS_SKIPPED: &str = "FindingsSkipped";
pub const FINDINGS_REFUSED: &str = "FindingsRefused";
pub const ROLES_REVOKED: &str = "RolesRevoked";
pub const INSTANCES_CYCLED: &str = "InstancesCycled";
pub const INSTANCES_ISOLATED: &str = "InstancesIsolated";
pub const INSTANCES_LEFT_REVOKED: &str = "InstancesLeftRevoked";
pub const INSTANCES_NEEDING_ATTENTION: &str = "InstancesNeedingAttention";
pub const FAILURES: &str = "Failures";
pub const CONTAINMENT_LATENCY: &str = "ContainmentLatency";
/// Readiness: roles an instance uses, those a containment could not revoke, the instances a
/// revocation would leave without credentials until their rotation, and the parts not read.
pub const READINESS_ROLES: &str = "ReadinessRoles";
pub const READINESS_NOT_CONTAINABLE: &str = "ReadinessRolesNotContainable";
pub const READINESS_WITHOUT_CREDENTIALS: &str = "ReadinessInstancesWithoutCredentials";
pub const READINESS_UNREAD: &str = "ReadinessPartsNotRead";

/// The figures one report contributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Acted on (neither skipped nor refused), whatever the outcome.
    pub handled: u64,
    pub skipped: u64,
    /// GuardDuty did not confirm the finding.
    pub refused: u64,
    /// The cut-off was written by this run.
    pub revoked: u64,
    /// Instances this run cycled, or finished cycling.
    pub cycled: u64,
    /// Instances this run isolated.
    pub isolated: u64,
    /// Instances whose credentials this run's cut-off revoked and that wait for their rotation.
    pub left_revoked: u64,
    pub needing_attention: u64,
    pub failures: u64,
    /// From the event's publication to the revocation written, when both are known.
    pub containment_latency_ms: Option<u64>,
}

impl Figures {
    pub fn of(report: &Report) -> Self {
        let acted_on = |id: &str| report.steps.iter().any(|s| s.target == id && s.wrote());
        let count = |pick: &dyn Fn(&InstanceReport) -> bool| report.instances.iter().filter(|i| pick(i)).count() as u64;
        let revoked = report
            .cutoff
            .as_ref()
            .is_some_and(|c| c.status == CutoffStatus::Written);
        let latency = report
            .cutoff
            .as_ref()
            .and_then(|c| c.written_at)
            .zip(report.finding.event_time)
            .map(|(written, published)| millis_between(published, written));
        Self {
            handled: u64::from(!matches!(
                report.outcome,
                Outcome::Skipped | Outcome::Refused | Outcome::Assessed
            )),
            skipped: u64::from(report.outcome == Outcome::Skipped),
            refused: u64::from(report.outcome == Outcome::Refused),
            revoked: u64::from(revoked),
            cycled: count(&|i| {
                matches!(i.action, Some(Action::Cycle | Action::CycleReboot))
                    && !i.needs_attention
                    && acted_on(&i.instance_id)
            }),
            isolated: count(&|i| i.action == Some(Action::Isolate) && !i.needs_attention && acted_on(&i.instance_id)),
            left_revoked: if revoked {
                count(&|i| matches!(i.action, Some(Action::Revoke | Action::Ignore)))
            } else {
                0
            },
            needing_attention: count(&|i| i.needs_attention),
            failures: u64::from(report.outcome == Outcome::Failed),
            containment_latency_ms: latency,
        }
    }
}

/// Clock skew between EventBridge and Lambda must not make a negative latency.
fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

/// The embedded-metric-format object for one report.
pub fn emf(report: &Report, namespace: &str, function_name: &str, now: DateTime<Utc>) -> Value {
    let figures = Figures::of(report);
    let mut values: Vec<(&str, u64, &str)> = vec![
        (FINDINGS_HANDLED, figures.handled, "Count"),
        (FINDINGS_SKIPPED, figures.skipped, "Count"),
        (FINDINGS_REFUSED, figures.refused, "Count"),
        (ROLES_REVOKED, figures.revoked, "Count"),
        (INSTANCES_CYCLED, figures.cycled, "Count"),
        (INSTANCES_ISOLATED, figures.isolated, "Count"),
        (INSTANCES_LEFT_REVOKED, figures.left_revoked, "Count"),
        (INSTANCES_NEEDING_ATTENTION, figures.needing_attention, "Count"),
        (FAILURES, figures.failures, "Count"),
    ];
    // Declared only when measured: a declared metric without a value invalidates the line.
    if let Some(ms) = figures.containment_latency_ms {
        values.push((CONTAINMENT_LATENCY, ms, "Milliseconds"));
    }
    if let Some(r) = &report.readiness {
        values.extend([
            (READINESS_ROLES, r.roles() as u64, "Count"),
            (READINESS_NOT_CONTAINABLE, r.not_containable() as u64, "Count"),
            (READINESS_WITHOUT_CREDENTIALS, r.without_credentials() as u64, "Count"),
            (READINESS_UNREAD, r.unread() as u64, "Count"),
        ]);
    }
    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, _, unit)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["FunctionName"]],
                "Metrics": definitions,
            }],
        }),
    );
    line.insert("FunctionName".into(), function_name.into());
    for (name, value, _) in values {
        line.insert(name.into(), value.into());
    }
    // Lambda's log-level filter reads `level`; without one it would call this line INFO anyway.
    line.insert("level".into(), "INFO".into());
    line.insert("message".into(), "exfil-responder metrics".into());
    line.insert("findingId".into(), json!(report.finding.id));
    line.insert("outcome".into(), json!(report.outcome));
    Value::Object(line)
}

/// Log the metrics of one report as one line on stdout.
pub fn log_emf(report: &Report, namespace: &str, function_name: &str) {
    crate::logging::print_json_line(&emf(report, namespace, function_name, Utc::now()));
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::api::{ApiCall, StepOutcome, StepRecord};
    use crate::report::{CutoffReport, FindingSummary, Relation};
    use crate::rules::ActionSource;

    fn at(secs: u32, millis: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, secs).unwrap() + chrono::Duration::milliseconds(millis.into())
    }

    fn instance(id: &str, action: Action, needs_attention: bool) -> InstanceReport {
        InstanceReport {
            instance_id: id.into(),
            region: None,
            relation: Relation::Sibling,
            state: Some("running".into()),
            action: Some(action),
            action_source: Some(ActionSource::InstanceTag),
            result: String::new(),
            needs_attention,
            snapshots: Vec::new(),
            metadata_tokens: None,
        }
    }

    fn step(op: ApiCall, target: &str, outcome: StepOutcome) -> StepRecord {
        StepRecord {
            step: op,
            target: target.into(),
            outcome,
            duration_ms: 1,
            detail: None,
            error_code: None,
        }
    }

    fn remediated() -> Report {
        let mut report = Report::new(
            FindingSummary {
                id: Some("f-1".into()),
                event_time: Some(at(0, 0)),
                ..FindingSummary::default()
            },
            false,
        );
        report.outcome = Outcome::Remediated;
        report.cutoff = Some(CutoffReport {
            at: "2026-11-22T10:00:01Z".into(),
            status: CutoffStatus::Written,
            written_at: Some(at(1, 250)),
            policy: Some(crate::policy::Holder::inline()),
        });
        report.instances = vec![
            instance("i-0000000000000000a", Action::Cycle, false),
            instance("i-0000000000000000b", Action::Cycle, false),
            instance("i-0000000000000000c", Action::Revoke, false),
            instance("i-0000000000000000d", Action::Isolate, false),
            instance("i-0000000000000000e", Action::Ignore, false),
        ];
        report.steps = vec![
            step(ApiCall::PutRolePolicy, "WebAppRole", StepOutcome::Ok),
            step(
                ApiCall::AssociateIamInstanceProfile,
                "i-0000000000000000a",
                StepOutcome::Ok,
            ),
            // Already cycled earlier: only read this time.
            step(ApiCall::DescribeInstances, "i-0000000000000000b", StepOutcome::Ok),
            step(
                ApiCall::DisassociateIamInstanceProfile,
                "i-0000000000000000d",
                StepOutcome::Ok,
            ),
        ];
        report
    }

    #[test]
    fn a_remediation_counts_what_this_run_did() {
        let figures = Figures::of(&remediated());
        assert_eq!(
            figures,
            Figures {
                handled: 1,
                skipped: 0,
                refused: 0,
                revoked: 1,
                cycled: 1,
                isolated: 1,
                left_revoked: 2,
                needing_attention: 0,
                failures: 0,
                containment_latency_ms: Some(1250),
            }
        );
    }

    #[test]
    fn an_existing_cut_off_revokes_nothing_and_has_no_latency() {
        let mut report = remediated();
        report.outcome = Outcome::AlreadyRemediated;
        report.cutoff.as_mut().unwrap().status = CutoffStatus::Existing;
        report.cutoff.as_mut().unwrap().written_at = None;
        report.steps.clear();
        let figures = Figures::of(&report);
        assert_eq!((figures.revoked, figures.left_revoked, figures.cycled), (0, 0, 0));
        assert_eq!(figures.containment_latency_ms, None);
        assert_eq!(figures.handled, 1);
    }

    #[test]
    fn failures_skips_and_instances_needing_attention_are_counted() {
        let mut failed = remediated();
        failed.outcome = Outcome::Failed;
        failed.instances[0].needs_attention = true;
        let figures = Figures::of(&failed);
        assert_eq!((figures.failures, figures.needing_attention, figures.cycled), (1, 1, 0));

        let skipped = Report::new(FindingSummary::default(), false);
        let figures = Figures::of(&skipped);
        assert_eq!((figures.skipped, figures.handled, figures.failures), (1, 0, 0));

        let mut refused = Report::new(FindingSummary::default(), false);
        refused.outcome = Outcome::Refused;
        let figures = Figures::of(&refused);
        assert_eq!((figures.refused, figures.skipped, figures.handled), (1, 0, 0));
    }

    #[test]
    fn clock_skew_never_gives_a_negative_latency() {
        let mut report = remediated();
        report.finding.event_time = Some(at(5, 0));
        assert_eq!(Figures::of(&report).containment_latency_ms, Some(0));
    }

    #[test]
    fn the_line_follows_the_embedded_metric_format() {
        let line = emf(&remediated(), "ExfilResponder", "responder-fn", at(2, 0));
        let spec = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], at(2, 0).timestamp_millis());
        assert_eq!(spec["Namespace"], "ExfilResponder");
        assert_eq!(spec["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(line["FunctionName"], "responder-fn");
        // Every declared metric has a number at the top level, and only declared ones are numbers.
        let declared: Vec<&str> = spec["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &declared {
            assert!(line[*name].is_u64(), "{name} has no value");
        }
        let numbers = line.as_object().unwrap().values().filter(|v| v.is_number()).count();
        assert_eq!(numbers, declared.len());
        assert_eq!(line[CONTAINMENT_LATENCY], 1250);
        assert_eq!(
            spec["Metrics"][9],
            json!({"Name": CONTAINMENT_LATENCY, "Unit": "Milliseconds"})
        );
        assert_eq!(line["level"], "INFO");

        let mut unmeasured = remediated();
        unmeasured.finding.event_time = None;
        let line = emf(&unmeasured, "ExfilResponder", "responder-fn", at(2, 0));
        assert!(line.get(CONTAINMENT_LATENCY).is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
    }

    #[test]
    fn readiness_counts_what_cannot_be_contained_and_is_no_finding_handled() {
        use crate::report::readiness::{AccountReadiness, ReadinessReport};
        let report = Report {
            outcome: Outcome::Assessed,
            readiness: Some(ReadinessReport {
                accounts: vec![AccountReadiness::unread("111122223333", "denied".into())],
                summary: String::new(),
            }),
            ..Report::new(FindingSummary::default(), false)
        };
        let line = emf(&report, "ExfilResponder", "fn", at(0, 0));
        assert_eq!(line[FINDINGS_HANDLED], 0);
        assert_eq!(
            (&line[READINESS_ROLES], &line[READINESS_UNREAD]),
            (&json!(0), &json!(1))
        );
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        for name in [
            READINESS_ROLES,
            READINESS_NOT_CONTAINABLE,
            READINESS_WITHOUT_CREDENTIALS,
            READINESS_UNREAD,
        ] {
            assert!(declared.contains(name), "{name} not declared: {declared}");
        }
        let contained = emf(&remediated(), "ExfilResponder", "fn", at(0, 0));
        assert!(
            contained.get(READINESS_ROLES).is_none(),
            "only a readiness report counts them"
        );
    }
}
