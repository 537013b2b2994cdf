//! Safety properties of `infra/template.yaml`, the SAM template that deploys both functions.
//!
//! The template is parsed with `serde_yaml_ng`, which keeps CloudFormation's short forms
//! (`!Ref`, `!GetAtt`, `!Sub`, `!If`) as tagged values. Resources are found through their wiring
//! (the function built from the `ingest-feedback` binary, the queue its SQS event reads, the topic
//! subscribed to that queue, ...) rather than by logical ID, so a renamed or rewired resource is
//! still checked, and a broken wire is itself a failure.
//!
//! Every `check_*` function lists the problems it finds. Each runs on the real template, and most
//! also run on a copy broken the way a careless edit would break it, which proves the check notices
//! that regression. Needs no AWS, no network and no other crate of the workspace; `cfn-lint` and
//! `checkov` (scripts/lint-infra) cover CloudFormation validity, this file covers intent.

use serde_yaml_ng::{Mapping, Value};

/// The template under test, read at compile time (cargo rebuilds when it changes).
const TEMPLATE: &str = include_str!("../../infra/template.yaml");
const INGEST_BINARY: &str = "ingest-feedback";
const SYNC_BINARY: &str = "sync-mailcow";
/// 80 % of SES's review thresholds: 5 % bounces, 0.1 % complaints.
const BOUNCE_RATE_ALARM: f64 = 0.04;
const COMPLAINT_RATE_ALARM: f64 = 0.0008;
const METRICS_NAMESPACE: &str = "MailcowSesFeedback";
/// Actions that support no resource-level permissions, so `Resource: "*"` is the only option.
const ACTIONS_WITHOUT_RESOURCE_TYPES: &[&str] = &[
    "dynamodb:ListStreams",
    "ses:PutSuppressedDestination",
    "ses:DeleteSuppressedDestination",
    "ec2:DescribeNetworkInterfaces",
];

/// What a check found wrong; empty when the template is fine.
type Problems = Vec<String>;
/// A check: pushes the problems it finds; `Err` when it cannot even find what it checks.
type Check = fn(&Value, &mut Problems) -> Result<(), String>;

// ------------------------------------------------------------------------------------------------
// Reading the template
// ------------------------------------------------------------------------------------------------

fn template() -> Value {
    match serde_yaml_ng::from_str(TEMPLATE) {
        Ok(value) => value,
        Err(err) => panic!("infra/template.yaml is not valid YAML: {err}"),
    }
}

/// Runs `check` and returns everything it reports, a lookup failure included.
fn run(check: Check, t: &Value) -> Problems {
    let mut problems = Vec::new();
    if let Err(missing) = check(t, &mut problems) {
        problems.push(missing);
    }
    problems
}

/// Asserts the real template passes `check`.
fn assert_passes(check: Check) {
    let problems = run(check, &template());
    assert!(problems.is_empty(), "infra/template.yaml:\n  {}", problems.join("\n  "));
}

/// Asserts `check` reports a problem mentioning `expected` on the broken copy `t`.
fn assert_caught(check: Check, t: &Value, expected: &str) {
    let problems = run(check, t);
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "the check missed the regression: no problem mentions {expected:?}; got {problems:?}"
    );
}

/// Steps into a mapping key, a sequence index (a numeric key) or through a tag.
fn step<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Mapping(m) => m.get(key),
        Value::Sequence(s) => s.get(key.parse::<usize>().ok()?),
        Value::Tagged(t) => step(&t.value, key),
        _ => None,
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| step(cur, key))
}

fn prop<'a>(resource: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(resource.get("Properties")?, path)
}

fn resources(t: &Value) -> Vec<(&str, &Value)> {
    t.get("Resources")
        .and_then(Value::as_mapping)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?, v))).collect())
        .unwrap_or_default()
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .collect()
}

fn resource<'a>(t: &'a Value, id: &str) -> Result<&'a Value, String> {
    at(t, &["Resources", id]).ok_or_else(|| format!("resource {id} is missing"))
}

fn type_of<'a>(t: &'a Value, id: &str) -> Option<&'a str> {
    resource(t, id).ok()?.get("Type")?.as_str()
}

/// A plain string, or the template string of a `!Sub`.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Tagged(t) if t.tag == "Sub" => text(&t.value),
        Value::Sequence(s) => s.first().and_then(text),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// A number, a numeric string, or a `!Ref` to a parameter (its default).
fn number(t: &Value, v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        other => number(t, at(t, &["Parameters", ref_name(other)?, "Default"])),
    }
}

/// The largest value a number can take: a literal, or a parameter's `MaxValue`/`AllowedValues`.
fn max_number(t: &Value, v: Option<&Value>) -> Option<f64> {
    let Some(param) = v.and_then(ref_name).and_then(|p| at(t, &["Parameters", p])) else {
        return number(t, v);
    };
    if let Some(max) = param.get("MaxValue") {
        return number(t, Some(max));
    }
    let allowed = param.get("AllowedValues")?.as_sequence()?;
    allowed.iter().filter_map(|a| number(t, Some(a))).reduce(f64::max)
}

/// The name in `!Ref X` / `{Ref: X}`.
fn ref_name(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref")?.as_str(),
        _ => None,
    }
}

/// Every logical ID a value refers to, through `Ref`, `GetAtt` and `Sub` (long or short form),
/// looking inside `If`, `Join` and the like. Pseudo parameters are left out.
fn referenced_ids(v: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    collect_ids(v, &mut ids);
    ids.retain(|id| !id.starts_with("AWS::"));
    ids
}

fn collect_ids(v: &Value, ids: &mut Vec<String>) {
    let intrinsic = |name: &str, inner: &Value, ids: &mut Vec<String>| match name {
        "Ref" => ids.extend(inner.as_str().map(str::to_owned)),
        "GetAtt" => {
            let target = match inner {
                Value::String(s) => s.split('.').next(),
                Value::Sequence(s) => s.first().and_then(Value::as_str),
                _ => None,
            };
            ids.extend(target.map(str::to_owned));
        }
        "Sub" => {
            if let Some(s) = text(inner) {
                ids.extend(sub_variables(s));
            }
        }
        _ => collect_ids(inner, ids),
    };
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            intrinsic(tag.trim_start_matches('!'), &t.value, ids);
        }
        Value::Mapping(m) => {
            for (k, inner) in m {
                match k.as_str() {
                    Some(key @ "Ref") => intrinsic(key, inner, ids),
                    Some(key) if key.starts_with("Fn::") => intrinsic(&key[4..], inner, ids),
                    _ => collect_ids(inner, ids),
                }
            }
        }
        Value::Sequence(s) => s.iter().for_each(|inner| collect_ids(inner, ids)),
        _ => {}
    }
}

/// Logical IDs named in a `!Sub` string: `${X}` and `${X.Attr}` (`${!Literal}` is not a variable).
fn sub_variables(s: &str) -> Vec<String> {
    s.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .filter(|var| !var.starts_with('!'))
        .filter_map(|var| var.split('.').next())
        .map(str::to_owned)
        .collect()
}

fn refers_to(v: Option<&Value>, id: &str) -> bool {
    v.is_some_and(|v| referenced_ids(v).iter().any(|r| r == id))
}

/// Statements of a policy document, with both branches of any `!If` and no `AWS::NoValue`.
fn statements_of(document: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let items = match document.get("Statement") {
        Some(Value::Sequence(s)) => s.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    for item in items {
        push_branches(item, &mut out);
    }
    out
}

fn push_branches<'a>(item: &'a Value, out: &mut Vec<&'a Value>) {
    let branches = match item {
        Value::Tagged(t) if t.tag == "If" => t.value.as_sequence(),
        Value::Mapping(m) if m.len() == 1 => m.get("Fn::If").and_then(Value::as_sequence),
        Value::Mapping(_) => {
            out.push(item);
            return;
        }
        _ => None,
    };
    // [condition, if-true, if-false]; `!Ref AWS::NoValue` falls out (it is not a mapping).
    for branch in branches.into_iter().flatten().skip(1) {
        push_branches(branch, out);
    }
}

/// Every policy statement anywhere in the template, with the ID of the resource holding it.
fn all_statements(t: &Value) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        let mut documents = Vec::new();
        find_documents(r, &mut documents);
        for document in documents {
            out.extend(statements_of(document).into_iter().map(|s| (id, s)));
        }
    }
    out
}

fn find_documents<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Mapping(m) => {
            if m.contains_key("Statement") {
                out.push(v);
            }
            m.values().for_each(|inner| find_documents(inner, out));
        }
        Value::Sequence(s) => s.iter().for_each(|inner| find_documents(inner, out)),
        Value::Tagged(t) => find_documents(&t.value, out),
        _ => {}
    }
}

fn is_allow(statement: &Value) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
}

fn actions(statement: &Value) -> Vec<&str> {
    strings(statement.get("Action"))
}

/// The `Resource` entries of a statement, each as it is written.
fn statement_resources(statement: &Value) -> Vec<&Value> {
    match statement.get("Resource") {
        Some(Value::Sequence(s)) => s.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    }
}

/// Whether the inline policies of role `role` allow `action` on resource `target`.
fn role_allows(t: &Value, role: &str, action: &str, target: &str) -> bool {
    let Ok(r) = resource(t, role) else { return false };
    let Some(Value::Sequence(policies)) = prop(r, &["Policies"]) else { return false };
    policies.iter().filter_map(|p| p.get("PolicyDocument")).flat_map(statements_of).any(|s| {
        is_allow(s)
            && actions(s).contains(&action)
            && statement_resources(s).iter().any(|res| refers_to(Some(res), target))
    })
}

// ------------------------------------------------------------------------------------------------
// Following the wiring
// ------------------------------------------------------------------------------------------------

/// The function built from `binary` (`Metadata.BuildProperties.Binary`).
fn function_built_from<'a>(t: &'a Value, binary: &str) -> Result<(&'a str, &'a Value), String> {
    let found: Vec<_> = of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, r)| {
            at(r, &["Metadata", "BuildProperties", "Binary"]).and_then(Value::as_str)
                == Some(binary)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no AWS::Serverless::Function is built from the `{binary}` binary")),
        _ => Err(format!("several functions are built from the `{binary}` binary")),
    }
}

/// The `Properties` of the function's only event of type `ty`.
fn event<'a>(function: &'a Value, ty: &str) -> Result<&'a Value, String> {
    let events = prop(function, &["Events"]).and_then(Value::as_mapping);
    let found: Vec<_> = events
        .into_iter()
        .flat_map(Mapping::values)
        .filter(|e| e.get("Type").and_then(Value::as_str) == Some(ty))
        .filter_map(|e| e.get("Properties"))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("the function has no {ty} event")),
        _ => Err(format!("the function has several {ty} events")),
    }
}

/// The one resource of type `ty` that `v` refers to.
fn target_of(t: &Value, v: Option<&Value>, ty: &str, what: &str) -> Result<String, String> {
    let ids = v.map(referenced_ids).unwrap_or_default();
    ids.into_iter()
        .find(|id| type_of(t, id) == Some(ty))
        .ok_or_else(|| format!("{what} does not refer to an {ty}"))
}

fn feedback_queue(t: &Value) -> Result<String, String> {
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    target_of(t, event(ingest, "SQS")?.get("Queue"), "AWS::SQS::Queue", "the ingest SQS event")
}

/// The topic whose subscription delivers into the feedback queue.
fn feedback_topic(t: &Value) -> Result<String, String> {
    let queue = feedback_queue(t)?;
    let subscription = feedback_subscription(t, &queue)?;
    target_of(t, prop(subscription, &["TopicArn"]), "AWS::SNS::Topic", "the feedback subscription")
}

fn feedback_subscription<'a>(t: &'a Value, queue: &str) -> Result<&'a Value, String> {
    of_type(t, "AWS::SNS::Subscription")
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| refers_to(prop(r, &["Endpoint"]), queue))
        .ok_or_else(|| format!("no SNS subscription delivers into the feedback queue {queue}"))
}

fn suppression_table(t: &Value) -> Result<String, String> {
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    let var = prop(ingest, &["Environment", "Variables", "SUPPRESSION_TABLE"]);
    target_of(t, var, "AWS::DynamoDB::Table", "ingest's SUPPRESSION_TABLE")
}

fn role_of(t: &Value, function: &Value, name: &str) -> Result<String, String> {
    target_of(t, prop(function, &["Role"]), "AWS::IAM::Role", &format!("{name}'s Role"))
}

fn alarms(t: &Value) -> Vec<(&str, &Value)> {
    of_type(t, "AWS::CloudWatch::Alarm")
}

/// The alarm that watches `metric` (directly or inside its metric math).
fn alarms_on<'a>(t: &'a Value, namespace: &str, metric: &str) -> Vec<(&'a str, &'a Value)> {
    let watches = |m: &Value| {
        m.get("Namespace").and_then(Value::as_str) == Some(namespace)
            && m.get("MetricName").and_then(Value::as_str) == Some(metric)
    };
    alarms(t)
        .into_iter()
        .filter(|(_, a)| {
            let direct = a.get("Properties").is_some_and(&watches);
            let in_math = prop(a, &["Metrics"])
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|m| at(m, &["MetricStat", "Metric"]))
                .any(watches);
            direct || in_math
        })
        .collect()
}

fn notifies(alarm: &Value) -> bool {
    let targets = prop(alarm, &["AlarmActions"]).and_then(Value::as_sequence);
    targets.is_some_and(|s| !s.is_empty())
}

// ------------------------------------------------------------------------------------------------
// Checks
// ------------------------------------------------------------------------------------------------

fn check_queue_policy(t: &Value, p: &mut Problems) -> Result<(), String> {
    let queue = feedback_queue(t)?;
    let topic = feedback_topic(t)?;
    let policies: Vec<_> = of_type(t, "AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, r)| refers_to(prop(r, &["Queues"]), &queue))
        .collect();
    if policies.is_empty() {
        p.push(format!("no queue policy covers the feedback queue {queue}"));
    }
    for (id, policy) in policies {
        let Some(document) = prop(policy, &["PolicyDocument"]) else {
            p.push(format!("{id}: no PolicyDocument"));
            continue;
        };
        for s in statements_of(document).into_iter().filter(|s| is_allow(s)) {
            let service = at(s, &["Principal", "Service"]).and_then(Value::as_str);
            if service != Some("sns.amazonaws.com") || at(s, &["Principal", "AWS"]).is_some() {
                p.push(format!("{id}: a statement admits a principal other than SNS: {s:?}"));
            }
            if actions(s) != ["sqs:SendMessage"] {
                p.push(format!("{id}: SNS may do more than sqs:SendMessage: {:?}", actions(s)));
            }
            let source = ["ArnEquals", "ArnLike"]
                .iter()
                .find_map(|op| at(s, &["Condition", op, "aws:SourceArn"]));
            let only_topic = source.is_some_and(|v| referenced_ids(v) == [topic.as_str()]);
            if !only_topic {
                p.push(format!("{id}: aws:SourceArn is not limited to the feedback topic {topic}"));
            }
        }
    }
    Ok(())
}

fn check_batch_item_failures(t: &Value, p: &mut Problems) -> Result<(), String> {
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    let sqs = event(ingest, "SQS")?;
    if !strings(sqs.get("FunctionResponseTypes")).contains(&"ReportBatchItemFailures") {
        p.push(
            "the ingest SQS event lacks FunctionResponseTypes: [ReportBatchItemFailures]".into(),
        );
    }
    for key in ["BatchSize", "MaximumBatchingWindowInSeconds"] {
        let from_parameter =
            sqs.get(key).and_then(ref_name).is_some_and(|n| at(t, &["Parameters", n]).is_some());
        if !from_parameter {
            p.push(format!("the ingest SQS event's {key} is not taken from a parameter"));
        }
    }
    Ok(())
}

fn check_sync_concurrency(t: &Value, p: &mut Problems) -> Result<(), String> {
    let (_, sync) = function_built_from(t, SYNC_BINARY)?;
    let reserved = number(t, prop(sync, &["ReservedConcurrentExecutions"]));
    if reserved != Some(1.0) {
        p.push(format!("sync-mailcow ReservedConcurrentExecutions is {reserved:?}, not 1"));
    }
    Ok(())
}

fn check_no_wildcard_actions(t: &Value, p: &mut Problems) -> Result<(), String> {
    let statements = all_statements(t);
    if statements.len() < 10 {
        return Err(format!(
            "only {} policy statements found: the walk is broken",
            statements.len()
        ));
    }
    for (id, s) in statements {
        for action in actions(s).into_iter().chain(strings(s.get("NotAction"))) {
            if action.contains('*') {
                p.push(format!("{id}: wildcard action {action:?}"));
            }
        }
        if is_allow(s) && s.get("NotAction").is_some() {
            p.push(format!("{id}: Allow with NotAction grants everything else"));
        }
        let principal = s.get("Principal");
        let open = principal.and_then(Value::as_str) == Some("*")
            || principal.and_then(|pr| pr.get("AWS")).and_then(Value::as_str) == Some("*");
        if is_allow(s) && open {
            p.push(format!("{id}: Allow for any principal"));
        }
    }
    Ok(())
}

fn check_resource_wildcards(t: &Value, p: &mut Problems) -> Result<(), String> {
    for (id, s) in all_statements(t).into_iter().filter(|(_, s)| is_allow(s)) {
        let star = statement_resources(s).iter().any(|r| r.as_str() == Some("*"));
        if !star {
            continue;
        }
        for action in actions(s) {
            if !ACTIONS_WITHOUT_RESOURCE_TYPES.contains(&action) {
                p.push(format!("{id}: {action} on Resource \"*\" although it can be scoped"));
            }
        }
    }
    Ok(())
}

fn check_explicit_roles(t: &Value, p: &mut Problems) -> Result<(), String> {
    for (id, f) in of_type(t, "AWS::Serverless::Function") {
        if prop(f, &["Policies"]).is_some() {
            p.push(format!("{id}: SAM Policies hide their statements; use the explicit role"));
        }
        if role_of(t, f, id).is_err() {
            p.push(format!("{id}: Role does not refer to an AWS::IAM::Role of this template"));
        }
    }
    for (id, role) in of_type(t, "AWS::IAM::Role") {
        if prop(role, &["ManagedPolicyArns"]).is_some() {
            p.push(format!("{id}: managed policies are not reviewed here; inline the statements"));
        }
    }
    Ok(())
}

/// What each function must be allowed to do, as (binary, action, resource logical ID).
fn needed_permissions(t: &Value) -> Result<Vec<(&'static str, &'static str, String)>, String> {
    let table = suppression_table(t)?;
    let queue = feedback_queue(t)?;
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    let (_, sync) = function_built_from(t, SYNC_BINARY)?;
    let quarantine = target_of(
        t,
        prop(ingest, &["Environment", "Variables", "QUARANTINE_QUEUE_URL"]),
        "AWS::SQS::Queue",
        "ingest's QUARANTINE_QUEUE_URL",
    )?;
    let failures = target_of(
        t,
        at(event(sync, "DynamoDB")?, &["DestinationConfig", "OnFailure", "Destination"]),
        "AWS::SQS::Queue",
        "the stream's on-failure destination",
    )?;
    let mut needed = Vec::new();
    for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"] {
        needed.push((INGEST_BINARY, action, table.clone()));
        needed.push((SYNC_BINARY, action, table.clone()));
    }
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
        needed.push((INGEST_BINARY, action, queue.clone()));
    }
    needed.push((INGEST_BINARY, "sqs:SendMessage", quarantine));
    needed.push((SYNC_BINARY, "dynamodb:Query", table.clone()));
    for action in ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"] {
        needed.push((SYNC_BINARY, action, table.clone()));
    }
    needed.push((SYNC_BINARY, "sqs:SendMessage", failures));
    Ok(needed)
}

fn check_needed_permissions(t: &Value, p: &mut Problems) -> Result<(), String> {
    for (binary, action, target) in needed_permissions(t)? {
        let (id, f) = function_built_from(t, binary)?;
        let role = role_of(t, f, id)?;
        if !role_allows(t, &role, action, &target) {
            p.push(format!("{role} ({binary}) may not {action} on {target}"));
        }
    }
    let (id, sync) = function_built_from(t, SYNC_BINARY)?;
    let role = role_of(t, sync, id)?;
    let secret = prop(sync, &["Environment", "Variables", "MAILCOW_API_KEY_SECRET"]);
    let secret_ids = secret.map(referenced_ids).unwrap_or_default();
    let readable =
        secret_ids.iter().all(|s| role_allows(t, &role, "secretsmanager:GetSecretValue", s));
    if secret_ids.is_empty() || !readable {
        p.push(format!("{role} may not read the secret named by MAILCOW_API_KEY_SECRET"));
    }
    Ok(())
}

fn check_table_protection(t: &Value, p: &mut Problems) -> Result<(), String> {
    let id = suppression_table(t)?;
    let table = resource(t, &id)?;
    let pitr = prop(table, &["PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"]);
    if boolean(pitr) != Some(true) {
        p.push(format!("{id}: point-in-time recovery is not enabled"));
    }
    if boolean(prop(table, &["DeletionProtectionEnabled"])) != Some(true) {
        p.push(format!("{id}: DeletionProtectionEnabled is not true"));
    }
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        if table.get(policy).and_then(Value::as_str) != Some("Retain") {
            p.push(format!("{id}: {policy} is not Retain"));
        }
    }
    Ok(())
}

fn check_table_design(t: &Value, p: &mut Problems) -> Result<(), String> {
    let id = suppression_table(t)?;
    let table = resource(t, &id)?;
    let expect = |p: &mut Problems, path: &[&str], want: &str| {
        let got = prop(table, path).and_then(Value::as_str);
        if got != Some(want) {
            p.push(format!("{id}: {} is {got:?}, want {want:?}", path.join(".")));
        }
    };
    expect(p, &["BillingMode"], "PAY_PER_REQUEST");
    expect(p, &["StreamSpecification", "StreamViewType"], "NEW_AND_OLD_IMAGES");
    expect(p, &["TimeToLiveSpecification", "AttributeName"], "ttl");
    if boolean(prop(table, &["TimeToLiveSpecification", "Enabled"])) != Some(true) {
        p.push(format!("{id}: TTL is not enabled"));
    }
    if boolean(prop(table, &["SSESpecification", "SSEEnabled"])) != Some(true) {
        p.push(format!("{id}: server-side encryption (SSESpecification.SSEEnabled) is off"));
    }
    if key_schema(prop(table, &["KeySchema"])) != [("pk", "HASH"), ("sk", "RANGE")] {
        p.push(format!("{id}: key schema is not pk (HASH) + sk (RANGE)"));
    }
    let indexes = prop(table, &["GlobalSecondaryIndexes"]).and_then(Value::as_sequence);
    let indexes = indexes.map(Vec::as_slice).unwrap_or_default();
    for (name, hash, range) in
        [("by-state-reason", "gsi1pk", "gsi1sk"), ("by-domain", "gsi2pk", "gsi2sk")]
    {
        let index =
            indexes.iter().find(|i| i.get("IndexName").and_then(Value::as_str) == Some(name));
        let Some(index) = index else {
            p.push(format!("{id}: index {name} is missing"));
            continue;
        };
        if key_schema(index.get("KeySchema")) != [(hash, "HASH"), (range, "RANGE")] {
            p.push(format!("{id}: index {name} is not keyed {hash} (HASH) + {range} (RANGE)"));
        }
        if at(index, &["Projection", "ProjectionType"]).and_then(Value::as_str) != Some("ALL") {
            p.push(format!("{id}: index {name} does not project ALL"));
        }
    }
    if indexes.len() != 2 {
        p.push(format!("{id}: {} global secondary indexes, the design has 2", indexes.len()));
    }
    Ok(())
}

fn key_schema(v: Option<&Value>) -> Vec<(&str, &str)> {
    let keys = v.and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
    keys.iter()
        .filter_map(|k| Some((k.get("AttributeName")?.as_str()?, k.get("KeyType")?.as_str()?)))
        .collect()
}

fn check_rate_alarm(
    t: &Value,
    p: &mut Problems,
    numerator: &str,
    threshold: f64,
) -> Result<(), String> {
    let (ingest, _) = function_built_from(t, INGEST_BINARY)?;
    let found = alarms_on(t, METRICS_NAMESPACE, numerator);
    let [(id, alarm)] = found.as_slice() else {
        return Err(format!("want exactly one alarm on {METRICS_NAMESPACE}/{numerator}"));
    };
    let got = number(t, prop(alarm, &["Threshold"]));
    if got.is_none_or(|g| (g - threshold).abs() > 1e-12) {
        p.push(format!("{id}: Threshold is {got:?}, want {threshold} (80 % of SES's review rate)"));
    }
    let operator = prop(alarm, &["ComparisonOperator"]).and_then(Value::as_str);
    if !matches!(operator, Some("GreaterThanThreshold" | "GreaterThanOrEqualToThreshold")) {
        p.push(format!("{id}: ComparisonOperator {operator:?} does not fire on a high rate"));
    }
    if prop(alarm, &["TreatMissingData"]).and_then(Value::as_str) != Some("notBreaching") {
        p.push(format!("{id}: TreatMissingData is not notBreaching (a quiet day writes nothing)"));
    }
    if !notifies(alarm) {
        p.push(format!("{id}: no AlarmActions"));
    }
    let metrics = prop(alarm, &["Metrics"]).and_then(Value::as_sequence);
    let metrics = metrics.map(Vec::as_slice).unwrap_or_default();
    let id_of = |name: &str| {
        metrics.iter().find_map(|m| {
            let metric = at(m, &["MetricStat", "Metric"])?;
            (metric.get("MetricName")?.as_str()? == name).then(|| m.get("Id")?.as_str()).flatten()
        })
    };
    let expression = metrics
        .iter()
        .find(|m| boolean(m.get("ReturnData")) != Some(false))
        .and_then(|m| m.get("Expression"))
        .and_then(text);
    match (id_of(numerator), id_of("DeliveriesTotal"), expression) {
        (Some(num), Some(deliveries), Some(expr)) => {
            if !expr.contains(&format!("{num},")) && !expr.contains(&format!("{num})")) {
                p.push(format!("{id}: the returned expression does not use {numerator}"));
            }
            if !expr.contains('/') || !expr.contains(deliveries) {
                p.push(format!("{id}: the returned expression is not a rate over deliveries"));
            }
        }
        _ => p.push(format!("{id}: want {numerator} / DeliveriesTotal metric math")),
    }
    for m in metrics.iter().filter_map(|m| at(m, &["MetricStat", "Metric"])) {
        let dims = m.get("Dimensions").and_then(Value::as_sequence);
        let service = dims
            .into_iter()
            .flatten()
            .find(|d| d.get("Name").and_then(Value::as_str) == Some("Service"));
        if !refers_to(service.and_then(|d| d.get("Value")), ingest) {
            p.push(format!("{id}: a metric lacks the Service dimension naming ingest-feedback"));
        }
    }
    Ok(())
}

fn check_bounce_rate_alarm(t: &Value, p: &mut Problems) -> Result<(), String> {
    check_rate_alarm(t, p, "HardBounces", BOUNCE_RATE_ALARM)
}

fn check_complaint_rate_alarm(t: &Value, p: &mut Problems) -> Result<(), String> {
    check_rate_alarm(t, p, "ComplaintsTotal", COMPLAINT_RATE_ALARM)
}

/// The queues whose depth must page: feedback DLQ, quarantine, sync on-failure destination.
fn watched_queues(t: &Value) -> Result<Vec<(&'static str, String)>, String> {
    let queue = feedback_queue(t)?;
    let dlq = target_of(
        t,
        prop(resource(t, &queue)?, &["RedrivePolicy", "deadLetterTargetArn"]),
        "AWS::SQS::Queue",
        "the feedback queue's RedrivePolicy",
    )?;
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    let quarantine = target_of(
        t,
        prop(ingest, &["Environment", "Variables", "QUARANTINE_QUEUE_URL"]),
        "AWS::SQS::Queue",
        "ingest's QUARANTINE_QUEUE_URL",
    )?;
    let (_, sync) = function_built_from(t, SYNC_BINARY)?;
    let failures = target_of(
        t,
        at(event(sync, "DynamoDB")?, &["DestinationConfig", "OnFailure", "Destination"]),
        "AWS::SQS::Queue",
        "the stream's on-failure destination",
    )?;
    Ok(vec![("feedback DLQ", dlq), ("quarantine", quarantine), ("sync failures", failures)])
}

fn check_depth_alarms(t: &Value, p: &mut Problems) -> Result<(), String> {
    let depth = alarms_on(t, "AWS/SQS", "ApproximateNumberOfMessagesVisible");
    for (what, queue) in watched_queues(t)? {
        let alarm = depth.iter().find(|(_, a)| {
            let dims = prop(a, &["Dimensions"]).and_then(Value::as_sequence);
            dims.into_iter().flatten().any(|d| {
                d.get("Name").and_then(Value::as_str) == Some("QueueName")
                    && refers_to(d.get("Value"), &queue)
            })
        });
        let Some((id, alarm)) = alarm else {
            p.push(format!("no depth alarm on the {what} queue {queue}"));
            continue;
        };
        check_fires_above_zero(t, p, id, alarm);
    }
    Ok(())
}

fn check_fires_above_zero(t: &Value, p: &mut Problems, id: &str, alarm: &Value) {
    let threshold = number(t, prop(alarm, &["Threshold"]));
    let operator = prop(alarm, &["ComparisonOperator"]).and_then(Value::as_str);
    if threshold != Some(0.0) || operator != Some("GreaterThanThreshold") {
        p.push(format!("{id}: does not fire above zero ({operator:?} {threshold:?})"));
    }
    if !notifies(alarm) {
        p.push(format!("{id}: no AlarmActions"));
    }
}

fn check_error_alarms(t: &Value, p: &mut Problems) -> Result<(), String> {
    let errors = alarms_on(t, "AWS/Lambda", "Errors");
    for binary in [INGEST_BINARY, SYNC_BINARY] {
        let (function, _) = function_built_from(t, binary)?;
        let alarm = errors.iter().find(|(_, a)| {
            let dims = prop(a, &["Dimensions"]).and_then(Value::as_sequence);
            dims.into_iter().flatten().any(|d| refers_to(d.get("Value"), function))
        });
        match alarm {
            Some((id, alarm)) => check_fires_above_zero(t, p, id, alarm),
            None => p.push(format!("no Errors alarm on {function}")),
        }
    }
    Ok(())
}

fn check_function_runtime(t: &Value, p: &mut Problems) -> Result<(), String> {
    for binary in [INGEST_BINARY, SYNC_BINARY] {
        let (id, f) = function_built_from(t, binary)?;
        let expect = |p: &mut Problems, v: Option<&Value>, what: &str, want: &str| {
            let got = v.and_then(Value::as_str);
            if got != Some(want) {
                p.push(format!("{id}: {what} is {got:?}, want {want:?}"));
            }
        };
        expect(p, prop(f, &["Runtime"]), "Runtime", "provided.al2023");
        expect(p, prop(f, &["Handler"]), "Handler", "bootstrap");
        expect(p, at(f, &["Metadata", "BuildMethod"]), "BuildMethod", "rust-cargolambda");
        if strings(prop(f, &["Architectures"])) != ["arm64"] {
            p.push(format!("{id}: Architectures is not [arm64]"));
        }
    }
    let (id, ingest) = function_built_from(t, INGEST_BINARY)?;
    let memory = number(t, prop(ingest, &["MemorySize"]));
    if memory != Some(128.0) {
        p.push(format!("{id}: MemorySize is {memory:?}, want 128"));
    }
    Ok(())
}

fn check_visibility_timeout(t: &Value, p: &mut Problems) -> Result<(), String> {
    let queue = feedback_queue(t)?;
    let (id, ingest) = function_built_from(t, INGEST_BINARY)?;
    let timeout = number(t, prop(ingest, &["Timeout"])).ok_or(format!("{id}: no Timeout"))?;
    let window = max_number(t, event(ingest, "SQS")?.get("MaximumBatchingWindowInSeconds"));
    let visibility = number(t, prop(resource(t, &queue)?, &["VisibilityTimeout"]));
    let needed = 6.0 * timeout + window.unwrap_or(0.0);
    if visibility.is_none_or(|v| v < needed) {
        p.push(format!(
            "{queue}: VisibilityTimeout {visibility:?} is below 6 x {timeout} s + {window:?} s"
        ));
    }
    Ok(())
}

fn check_dead_letter_queue(t: &Value, p: &mut Problems) -> Result<(), String> {
    let queue = feedback_queue(t)?;
    let q = resource(t, &queue)?;
    let receives = number(t, prop(q, &["RedrivePolicy", "maxReceiveCount"]));
    if receives != Some(5.0) {
        p.push(format!("{queue}: maxReceiveCount is {receives:?}, want 5"));
    }
    let dlq = target_of(
        t,
        prop(q, &["RedrivePolicy", "deadLetterTargetArn"]),
        "AWS::SQS::Queue",
        "RedrivePolicy",
    )?;
    let retention = number(t, prop(resource(t, &dlq)?, &["MessageRetentionPeriod"]));
    if retention != Some(1_209_600.0) {
        p.push(format!("{dlq}: MessageRetentionPeriod is {retention:?}, want 1209600 (14 days)"));
    }
    Ok(())
}

fn check_subscription(t: &Value, p: &mut Problems) -> Result<(), String> {
    let queue = feedback_queue(t)?;
    let subscription = feedback_subscription(t, &queue)?;
    let raw = prop(subscription, &["RawMessageDelivery"]);
    if raw.is_some() && boolean(raw) != Some(false) {
        p.push(
            "the feedback subscription sets RawMessageDelivery: the signed envelope is lost".into(),
        );
    }
    if prop(subscription, &["Protocol"]).and_then(Value::as_str) != Some("sqs") {
        p.push("the feedback subscription's Protocol is not sqs".into());
    }
    let (_, ingest) = function_built_from(t, INGEST_BINARY)?;
    let topic = feedback_topic(t)?;
    let allowed = prop(ingest, &["Environment", "Variables", "ALLOWED_TOPIC_ARNS"]);
    if !refers_to(allowed, &topic) {
        p.push(format!("ingest's ALLOWED_TOPIC_ARNS does not name the feedback topic {topic}"));
    }
    let signature = prop(ingest, &["Environment", "Variables", "REQUIRE_SIGNATURE"]);
    if boolean(signature) != Some(true) {
        p.push("ingest's REQUIRE_SIGNATURE is not the literal \"true\"".into());
    }
    Ok(())
}

fn check_stream_source(t: &Value, p: &mut Problems) -> Result<(), String> {
    let (id, sync) = function_built_from(t, SYNC_BINARY)?;
    let stream = event(sync, "DynamoDB")?;
    let table = suppression_table(t)?;
    if !refers_to(stream.get("Stream"), &table) {
        p.push(format!("{id}: the stream event does not read {table}'s stream"));
    }
    let start = stream.get("StartingPosition").and_then(Value::as_str);
    if !matches!(start, Some("TRIM_HORIZON" | "LATEST")) {
        p.push(format!("{id}: StartingPosition is {start:?}"));
    }
    if boolean(stream.get("BisectBatchOnFunctionError")) != Some(true) {
        p.push(format!("{id}: BisectBatchOnFunctionError is not true"));
    }
    let retries = number(t, stream.get("MaximumRetryAttempts"));
    if !retries.is_some_and(|r| (0.0..=10.0).contains(&r)) {
        p.push(format!("{id}: MaximumRetryAttempts is {retries:?}, want a bound of 0..=10"));
    }
    let destination = at(stream, &["DestinationConfig", "OnFailure", "Destination"]);
    if target_of(t, destination, "AWS::SQS::Queue", "OnFailure").is_err() {
        p.push(format!("{id}: the stream event has no DestinationConfig.OnFailure queue"));
    }
    let schedule = event(sync, "Schedule").or_else(|_| event(sync, "ScheduleV2"));
    if schedule.is_err() {
        p.push(format!("{id}: no EventBridge schedule for drift repair"));
    }
    Ok(())
}

fn check_log_groups(t: &Value, p: &mut Problems) -> Result<(), String> {
    for (id, group) in of_type(t, "AWS::Logs::LogGroup") {
        if number(t, prop(group, &["RetentionInDays"])).is_none() {
            p.push(format!("{id}: no RetentionInDays (logs would be kept forever)"));
        }
    }
    for binary in [INGEST_BINARY, SYNC_BINARY] {
        let (id, f) = function_built_from(t, binary)?;
        let group = prop(f, &["LoggingConfig", "LogGroup"]);
        if target_of(t, group, "AWS::Logs::LogGroup", "LoggingConfig.LogGroup").is_err() {
            p.push(format!("{id}: does not log into a log group of this template"));
        }
    }
    Ok(())
}

fn check_queue_encryption(t: &Value, p: &mut Problems) -> Result<(), String> {
    for (id, q) in of_type(t, "AWS::SQS::Queue") {
        let managed = boolean(prop(q, &["SqsManagedSseEnabled"])) == Some(true);
        if !managed && prop(q, &["KmsMasterKeyId"]).is_none() {
            p.push(format!("{id}: not encrypted at rest"));
        }
    }
    Ok(())
}

fn check_environment(t: &Value, p: &mut Problems) -> Result<(), String> {
    let expected: [(&str, &[&str]); 2] = [
        (
            INGEST_BINARY,
            &[
                "SUPPRESSION_TABLE",
                "QUARANTINE_QUEUE_URL",
                "SOFT_BOUNCE_THRESHOLD",
                "SOFT_BOUNCE_WINDOW_DAYS",
                "SOFT_BOUNCE_SUPPRESSION_DAYS",
                "NEVER_SUPPRESS",
                "HISTORY_RETENTION_DAYS",
                "ADDRESS_HASH_KEY",
                "REQUIRE_SIGNATURE",
                "ALLOWED_TOPIC_ARNS",
                "SNS_CERT_BUNDLE",
                "AUTO_CONFIRM_SUBSCRIPTIONS",
                "RUST_LOG",
            ],
        ),
        (
            SYNC_BINARY,
            &[
                "SUPPRESSION_TABLE",
                "MAILCOW_URL",
                "MAILCOW_API_KEY_SECRET",
                "MAILCOW_MODE",
                "SES_SYNC",
                "ADDRESS_HASH_KEY",
                "MAILCOW_CA_BUNDLE",
                "RUST_LOG",
            ],
        ),
    ];
    let table = suppression_table(t)?;
    for (binary, names) in expected {
        let (id, f) = function_built_from(t, binary)?;
        let vars = prop(f, &["Environment", "Variables"]).and_then(Value::as_mapping);
        let mut got: Vec<&str> =
            vars.into_iter().flat_map(|m| m.keys()).filter_map(Value::as_str).collect();
        let mut want = names.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            p.push(format!("{id}: environment {got:?}, want {want:?}"));
        }
        if !refers_to(prop(f, &["Environment", "Variables", "SUPPRESSION_TABLE"]), &table) {
            p.push(format!("{id}: SUPPRESSION_TABLE does not name {table}"));
        }
        let key = prop(f, &["Environment", "Variables", "ADDRESS_HASH_KEY"]).and_then(ref_name);
        let hidden = key.and_then(|k| at(t, &["Parameters", k, "NoEcho"])).and_then(Value::as_bool);
        if hidden != Some(true) {
            p.push(format!("{id}: ADDRESS_HASH_KEY does not come from a NoEcho parameter"));
        }
    }
    Ok(())
}

fn check_topic_policy(t: &Value, p: &mut Problems) -> Result<(), String> {
    let topic = feedback_topic(t)?;
    let policies: Vec<_> = of_type(t, "AWS::SNS::TopicPolicy")
        .into_iter()
        .filter(|(_, r)| refers_to(prop(r, &["Topics"]), &topic))
        .collect();
    let [(id, policy)] = policies.as_slice() else {
        return Err(format!("want exactly one topic policy on the feedback topic {topic}"));
    };
    let document = prop(policy, &["PolicyDocument"]).ok_or(format!("{id}: no PolicyDocument"))?;
    let allows: Vec<_> = statements_of(document).into_iter().filter(|s| is_allow(s)).collect();
    if allows.is_empty() {
        p.push(format!("{id}: SES is not allowed to publish"));
    }
    for s in allows {
        if at(s, &["Principal", "Service"]).and_then(Value::as_str) != Some("ses.amazonaws.com") {
            p.push(format!("{id}: a statement admits a principal other than SES"));
        }
        if actions(s) != ["sns:Publish"] {
            p.push(format!("{id}: SES may do more than sns:Publish: {:?}", actions(s)));
        }
        let account = at(s, &["Condition", "StringEquals", "AWS:SourceAccount"]);
        if account.and_then(ref_name) != Some("AWS::AccountId") {
            p.push(format!("{id}: publishing is not limited to this account's SES"));
        }
    }
    Ok(())
}

fn check_event_destination(t: &Value, p: &mut Problems) -> Result<(), String> {
    let topic = feedback_topic(t)?;
    let destinations = of_type(t, "AWS::SES::ConfigurationSetEventDestination");
    let found = destinations.iter().find(|(_, d)| {
        refers_to(prop(d, &["EventDestination", "SnsDestination", "TopicARN"]), &topic)
    });
    let Some((id, destination)) = found else {
        return Err(format!("no configuration set event destination publishes to {topic}"));
    };
    let types = strings(prop(destination, &["EventDestination", "MatchingEventTypes"]));
    for wanted in ["bounce", "complaint", "delivery", "reject", "deliveryDelay"] {
        if !types.contains(&wanted) {
            p.push(format!("{id}: MatchingEventTypes lacks {wanted}"));
        }
    }
    if boolean(prop(destination, &["EventDestination", "Enabled"])) != Some(true) {
        p.push(format!("{id}: the event destination is not enabled"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Breaking a copy of the template
// ------------------------------------------------------------------------------------------------

fn step_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match v {
        Value::Mapping(m) => m.get_mut(key),
        Value::Sequence(s) => s.get_mut(key.parse::<usize>().ok()?),
        Value::Tagged(t) => step_mut(&mut t.value, key),
        _ => None,
    }
}

/// A copy of the template with `path` (from the top) set to `value`, or removed when `None`.
fn broken(path: &[&str], value: Option<Value>) -> Value {
    let mut t = template();
    let (last, parents) = match path.split_last() {
        Some(split) => split,
        None => panic!("empty path"),
    };
    let mut cur = &mut t;
    for key in parents {
        cur = match step_mut(cur, key) {
            Some(next) => next,
            None => panic!("the template has no {} (at {key})", path.join(".")),
        };
    }
    let map = match cur {
        Value::Mapping(m) => m,
        Value::Tagged(tagged) => match &mut tagged.value {
            Value::Mapping(m) => m,
            _ => panic!("{} is not inside a mapping", path.join(".")),
        },
        _ => panic!("{} is not inside a mapping", path.join(".")),
    };
    match value {
        Some(v) => {
            map.insert(Value::from(*last), v);
        }
        None => {
            if map.remove(*last).is_none() {
                panic!("the template has no {} to remove", path.join("."));
            }
        }
    }
    t
}

fn yaml(text: &str) -> Value {
    match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(err) => panic!("bad YAML in a test: {err}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[test]
fn the_wiring_is_found_from_the_binaries() {
    let t = template();
    assert_eq!(feedback_queue(&t).unwrap(), "FeedbackQueue");
    assert_eq!(feedback_topic(&t).unwrap(), "FeedbackTopic");
    assert_eq!(suppression_table(&t).unwrap(), "SuppressionTable");
    assert_eq!(function_built_from(&t, SYNC_BINARY).unwrap().0, "SyncMailcowFunction");
}

#[test]
fn feedback_queue_policy_admits_only_the_feedback_topic() {
    assert_passes(check_queue_policy);
}

#[test]
fn queue_policy_check_catches_an_open_principal_and_a_missing_source_condition() {
    let statement =
        ["Resources", "FeedbackQueuePolicy", "Properties", "PolicyDocument", "Statement", "0"];
    let open = broken(&[&statement[..], &["Principal"]].concat(), Some(yaml("AWS: '*'")));
    assert_caught(check_queue_policy, &open, "principal other than SNS");
    let unconditioned = broken(&[&statement[..], &["Condition"]].concat(), None);
    assert_caught(check_queue_policy, &unconditioned, "not limited to the feedback topic");
    let other_topic = broken(
        &[&statement[..], &["Condition", "ArnEquals", "aws:SourceArn"]].concat(),
        Some(yaml("!Ref AlarmTopic")),
    );
    assert_caught(check_queue_policy, &other_topic, "not limited to the feedback topic");
}

#[test]
fn ingest_reports_batch_item_failures_with_batching_from_parameters() {
    assert_passes(check_batch_item_failures);
}

#[test]
fn batch_item_failure_check_catches_a_removed_response_type() {
    let path =
        ["Resources", "IngestFeedbackFunction", "Properties", "Events", "Feedback", "Properties"];
    let t = broken(&[&path[..], &["FunctionResponseTypes"]].concat(), None);
    assert_caught(check_batch_item_failures, &t, "ReportBatchItemFailures");
}

#[test]
fn sync_runs_with_reserved_concurrency_of_one() {
    assert_passes(check_sync_concurrency);
}

#[test]
fn concurrency_check_catches_a_second_sync_writer() {
    let path = ["Resources", "SyncMailcowFunction", "Properties", "ReservedConcurrentExecutions"];
    assert_caught(check_sync_concurrency, &broken(&path, Some(Value::from(2))), "not 1");
    assert_caught(check_sync_concurrency, &broken(&path, None), "not 1");
}

#[test]
fn no_policy_statement_allows_a_wildcard_action_or_principal() {
    assert_passes(check_no_wildcard_actions);
}

#[test]
fn wildcard_check_looks_inside_conditional_statements() {
    // Statement 7 of the sync role is `!If [SesSyncOn, <statement>, !Ref AWS::NoValue]`.
    let path = [
        "Resources",
        "SyncMailcowRole",
        "Properties",
        "Policies",
        "0",
        "PolicyDocument",
        "Statement",
        "7",
        "1",
        "Action",
    ];
    let t = template();
    let sid = at(&t, &path[..path.len() - 1]).and_then(|s| s.get("Sid")).and_then(Value::as_str);
    assert_eq!(sid, Some("MirrorIntoSesAccountSuppressionList"), "the path moved");
    let t = broken(&path, Some(yaml("ses:*")));
    assert_caught(check_no_wildcard_actions, &t, "wildcard action \"ses:*\"");
}

#[test]
fn resource_wildcards_are_limited_to_actions_without_resource_level_permissions() {
    assert_passes(check_resource_wildcards);
}

#[test]
fn resource_wildcard_check_catches_a_table_action_on_any_resource() {
    let path = [
        "Resources",
        "IngestFeedbackRole",
        "Properties",
        "Policies",
        "0",
        "PolicyDocument",
        "Statement",
        "3",
        "Resource",
    ];
    let t = broken(&path, Some(Value::from("*")));
    assert_caught(check_resource_wildcards, &t, "dynamodb:PutItem on Resource \"*\"");
}

#[test]
fn functions_use_explicit_roles_without_managed_policies() {
    assert_passes(check_explicit_roles);
}

#[test]
fn roles_grant_what_each_function_needs() {
    assert_passes(check_needed_permissions);
}

#[test]
fn permission_check_catches_a_missing_quarantine_send() {
    let path = [
        "Resources",
        "IngestFeedbackRole",
        "Properties",
        "Policies",
        "0",
        "PolicyDocument",
        "Statement",
        "2",
        "Resource",
    ];
    let t = broken(&path, Some(yaml("!GetAtt FeedbackDeadLetterQueue.Arn")));
    assert_caught(check_needed_permissions, &t, "may not sqs:SendMessage on QuarantineQueue");
}

#[test]
fn table_has_point_in_time_recovery_and_deletion_protection() {
    assert_passes(check_table_protection);
}

#[test]
fn table_protection_check_catches_disabled_recovery_and_protection() {
    let props = ["Resources", "SuppressionTable", "Properties"];
    let pitr = broken(
        &[&props[..], &["PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"]].concat(),
        Some(Value::from(false)),
    );
    assert_caught(check_table_protection, &pitr, "point-in-time recovery");
    let unprotected = broken(&[&props[..], &["DeletionProtectionEnabled"]].concat(), None);
    assert_caught(check_table_protection, &unprotected, "DeletionProtectionEnabled");
    let deletable =
        broken(&["Resources", "SuppressionTable", "DeletionPolicy"], Some(Value::from("Delete")));
    assert_caught(check_table_protection, &deletable, "DeletionPolicy is not Retain");
}

#[test]
fn table_matches_the_store_design() {
    assert_passes(check_table_design);
}

#[test]
fn table_design_check_catches_a_renamed_ttl_attribute_and_a_missing_index() {
    let props = ["Resources", "SuppressionTable", "Properties"];
    let ttl = broken(
        &[&props[..], &["TimeToLiveSpecification", "AttributeName"]].concat(),
        Some(Value::from("expires_at")),
    );
    assert_caught(check_table_design, &ttl, "TimeToLiveSpecification.AttributeName");
    let index = broken(
        &[&props[..], &["GlobalSecondaryIndexes", "1", "IndexName"]].concat(),
        Some(Value::from("by-domain-v2")),
    );
    assert_caught(check_table_design, &index, "index by-domain is missing");
}

#[test]
fn bounce_rate_alarm_fires_at_eighty_percent_of_the_ses_review_rate() {
    assert_passes(check_bounce_rate_alarm);
}

#[test]
fn complaint_rate_alarm_fires_at_eighty_percent_of_the_ses_review_rate() {
    assert_passes(check_complaint_rate_alarm);
}

#[test]
fn rate_alarm_checks_catch_the_review_threshold_itself() {
    let bounce = broken(
        &["Resources", "BounceRateAlarm", "Properties", "Threshold"],
        Some(Value::from(0.05)),
    );
    assert_caught(check_bounce_rate_alarm, &bounce, "want 0.04");
    let complaint = broken(
        &["Resources", "ComplaintRateAlarm", "Properties", "Threshold"],
        Some(Value::from(0.001)),
    );
    assert_caught(check_complaint_rate_alarm, &complaint, "want 0.0008");
    let missing = broken(
        &["Resources", "ComplaintRateAlarm", "Properties", "TreatMissingData"],
        Some(Value::from("breaching")),
    );
    assert_caught(check_complaint_rate_alarm, &missing, "notBreaching");
}

#[test]
fn dead_letter_quarantine_and_sync_failure_queues_alarm_above_zero() {
    assert_passes(check_depth_alarms);
}

#[test]
fn depth_alarm_check_catches_a_raised_threshold() {
    let path = ["Resources", "QuarantineQueueDepthAlarm", "Properties", "Threshold"];
    assert_caught(
        check_depth_alarms,
        &broken(&path, Some(Value::from(10))),
        "QuarantineQueueDepthAlarm",
    );
}

#[test]
fn errors_of_both_functions_are_alarmed() {
    assert_passes(check_error_alarms);
}

#[test]
fn functions_run_on_arm64_al2023_built_by_cargo_lambda() {
    assert_passes(check_function_runtime);
}

#[test]
fn runtime_check_catches_an_x86_build_and_more_memory() {
    let props = ["Resources", "SyncMailcowFunction", "Properties"];
    let x86 = broken(&[&props[..], &["Architectures"]].concat(), Some(yaml("[x86_64]")));
    assert_caught(check_function_runtime, &x86, "Architectures is not [arm64]");
    let memory = broken(
        &["Resources", "IngestFeedbackFunction", "Properties", "MemorySize"],
        Some(Value::from(512)),
    );
    assert_caught(check_function_runtime, &memory, "MemorySize");
}

#[test]
fn feedback_queue_visibility_covers_six_ingest_timeouts_and_the_batching_window() {
    assert_passes(check_visibility_timeout);
}

#[test]
fn visibility_check_catches_a_longer_ingest_timeout() {
    let path = ["Resources", "IngestFeedbackFunction", "Properties", "Timeout"];
    assert_caught(
        check_visibility_timeout,
        &broken(&path, Some(Value::from(60))),
        "VisibilityTimeout",
    );
}

#[test]
fn feedback_dead_letter_queue_takes_messages_after_five_receives_and_keeps_them_fourteen_days() {
    assert_passes(check_dead_letter_queue);
}

#[test]
fn subscription_keeps_the_signed_sns_envelope_and_ingest_requires_it() {
    assert_passes(check_subscription);
}

#[test]
fn subscription_check_catches_raw_delivery_and_a_disabled_signature_check() {
    let raw = broken(
        &["Resources", "FeedbackSubscription", "Properties", "RawMessageDelivery"],
        Some(Value::from(true)),
    );
    assert_caught(check_subscription, &raw, "RawMessageDelivery");
    let unsigned = broken(
        &[
            "Resources",
            "IngestFeedbackFunction",
            "Properties",
            "Environment",
            "Variables",
            "REQUIRE_SIGNATURE",
        ],
        Some(Value::from("false")),
    );
    assert_caught(check_subscription, &unsigned, "REQUIRE_SIGNATURE");
}

#[test]
fn stream_source_bisects_retries_a_bounded_number_of_times_and_keeps_failures() {
    assert_passes(check_stream_source);
}

#[test]
fn stream_check_catches_unbounded_retries_and_a_missing_failure_destination() {
    let path =
        ["Resources", "SyncMailcowFunction", "Properties", "Events", "TableStream", "Properties"];
    let forever = broken(&[&path[..], &["MaximumRetryAttempts"]].concat(), Some(Value::from(-1)));
    assert_caught(check_stream_source, &forever, "MaximumRetryAttempts");
    let lost = broken(&[&path[..], &["DestinationConfig"]].concat(), None);
    assert_caught(check_stream_source, &lost, "DestinationConfig.OnFailure");
    let whole =
        broken(&[&path[..], &["BisectBatchOnFunctionError"]].concat(), Some(Value::from(false)));
    assert_caught(check_stream_source, &whole, "BisectBatchOnFunctionError");
}

#[test]
fn every_log_group_has_a_retention_and_every_function_logs_into_one() {
    assert_passes(check_log_groups);
}

#[test]
fn every_queue_is_encrypted_at_rest() {
    assert_passes(check_queue_encryption);
}

#[test]
fn function_environments_carry_exactly_the_documented_variables() {
    assert_passes(check_environment);
}

#[test]
fn feedback_topic_accepts_publishes_only_from_this_accounts_ses() {
    assert_passes(check_topic_policy);
}

#[test]
fn configuration_set_publishes_the_feedback_event_types_to_the_feedback_topic() {
    assert_passes(check_event_destination);
}
