//! The deployed topology, created in moto from `infra/template.yaml`: queues (with the DLQ
//! redrive), topics, the SNS -> SQS subscription, the table (through the same
//! `suppression_store::schema::create_table` the CLI uses), the Mailcow key secret, and the
//! functions' event sources and environment as the template declares them.
//!
//! Names, attributes and wiring are read from the template; nothing here is a second hand-kept
//! copy of it. The few values changed for a local run are listed in [`LocalOverrides`] and are
//! reported next to the template's own. Depends on the AWS SDK and the template reader only.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, anyhow, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

use crate::template::{ACCOUNT_ID, Resolver, Template};

/// Values the local run changes, because the deployed ones would make a demo wait minutes.
#[derive(Debug, Clone)]
pub struct LocalOverrides {
    /// Visibility timeout (seconds) of queues an event source reads. The template's 180 s
    /// covers six ingest timeouts; locally a failed record should come back within seconds.
    pub visibility_timeout: u32,
    /// Upper bound (seconds) of the event sources' batching windows.
    pub max_batching_window: u32,
    /// Values of template parameters (over their defaults), e.g. `MailcowUrl`.
    pub parameters: HashMap<String, String>,
}

impl Default for LocalOverrides {
    fn default() -> Self {
        Self { visibility_timeout: 6, max_batching_window: 1, parameters: HashMap::new() }
    }
}

/// One SQS queue as created.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Logical id in the template.
    pub logical_id: String,
    /// Queue name.
    pub name: String,
    /// Queue URL (as moto answers it).
    pub url: String,
    /// Queue ARN.
    pub arn: String,
    /// Visibility timeout in seconds as created; the template's value is `template_visibility`.
    pub visibility_timeout: u32,
    /// The template's visibility timeout, when it sets one.
    pub template_visibility: Option<u32>,
    /// Redrive: (dead-letter queue logical id, maxReceiveCount).
    pub redrive: Option<(String, u32)>,
}

/// An SQS event source of a function.
#[derive(Debug, Clone)]
pub struct SqsSource {
    /// Logical id of the queue.
    pub queue: String,
    /// Records per invocation.
    pub batch_size: u32,
    /// Seconds the poller may wait to fill a batch (after the local bound).
    pub batching_window: u32,
    /// `ReportBatchItemFailures`.
    pub report_failures: bool,
}

/// A DynamoDB stream event source of a function.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// Records per invocation.
    pub batch_size: u32,
    /// Seconds the poller may wait to fill a batch (after the local bound).
    pub batching_window: u32,
    /// Retries of a failing batch before it goes to the failure destination.
    pub max_retries: u32,
    /// `FilterCriteria` patterns (JSON); a record is delivered when one matches.
    pub filters: Vec<serde_json::Value>,
    /// Logical id of the on-failure destination queue.
    pub on_failure: Option<String>,
    /// `ReportBatchItemFailures`.
    pub report_failures: bool,
}

/// A function as the template declares it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Logical id.
    pub logical_id: String,
    /// `FunctionName`.
    pub name: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Memory in MB.
    pub memory: u32,
    /// `Environment.Variables`, resolved. Personal data never; the hash key is a local value.
    pub environment: BTreeMap<String, String>,
    /// SQS event sources.
    pub sqs: Vec<SqsSource>,
    /// DynamoDB stream event sources.
    pub streams: Vec<StreamSource>,
    /// Schedule expressions.
    pub schedules: Vec<String>,
    /// Logical id of the queue asynchronous invocations that failed go to.
    pub dead_letter_queue: Option<String>,
    /// Retries of a failed asynchronous invocation (`EventInvokeConfig`; Lambda's default 2).
    pub async_retries: u32,
}

/// Everything created, with the addresses the pollers and the CLI need.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Stack name (prefix of every name).
    pub stack: String,
    /// Region.
    pub region: String,
    /// Queues by logical id.
    pub queues: BTreeMap<String, Queue>,
    /// Topic ARNs by logical id.
    pub topics: BTreeMap<String, String>,
    /// Subscriptions created: (topic logical id, queue logical id, raw delivery).
    pub subscriptions: Vec<(String, String, bool)>,
    /// The suppression table's name.
    pub table: String,
    /// Its stream ARN.
    pub stream_arn: String,
    /// ARN of the Mailcow API key secret, when the template creates one.
    pub secret_arn: Option<String>,
    /// The functions.
    pub functions: Vec<FunctionSpec>,
}

impl Topology {
    /// A queue by logical id.
    ///
    /// Fails when the template declares no such queue.
    pub fn queue(&self, logical_id: &str) -> anyhow::Result<&Queue> {
        self.queues.get(logical_id).ok_or_else(|| anyhow!("no queue {logical_id} in the topology"))
    }

    /// A function by its cargo binary name.
    ///
    /// Fails when the template declares no function built from that binary.
    pub fn function(&self, binary: &str) -> anyhow::Result<&FunctionSpec> {
        self.functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| anyhow!("the template has no function built from {binary}"))
    }
}

/// Clients of the AWS endpoints the topology is created in: moto for SQS, SNS and Secrets
/// Manager, and the DynamoDB endpoint (DynamoDB Local, or moto) for the table and its stream.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Clients for the two endpoints with the dummy credentials the emulators accept.
    pub async fn new(endpoint: &str, dynamodb_endpoint: &str, region: &str) -> Self {
        let config = |url: &str| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_owned()))
                .endpoint_url(url)
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "local-stack",
                ))
                .load()
        };
        let (aws, dynamodb) = (config(endpoint).await, config(dynamodb_endpoint).await);
        Self {
            sqs: aws_sdk_sqs::Client::new(&aws),
            sns: aws_sdk_sns::Client::new(&aws),
            dynamodb: aws_sdk_dynamodb::Client::new(&dynamodb),
            streams: aws_sdk_dynamodbstreams::Client::new(&dynamodb),
            secrets: aws_sdk_secretsmanager::Client::new(&aws),
        }
    }
}

/// Creates the template's resources through `clients` and returns what was created.
/// `mailcow_api_key` becomes the secret's value.
///
/// Fails when the template cannot be resolved, the table design in the template and in
/// `suppression_store::schema` disagree, or the emulator refuses a call.
pub async fn create(
    template: &Template,
    clients: &AwsClients,
    stack: &str,
    region: &str,
    overrides: &LocalOverrides,
    mailcow_api_key: &str,
) -> anyhow::Result<Topology> {
    let mut resolver = Resolver::new(template, stack, region);
    resolver.parameters = overrides.parameters.clone();
    let functions = template.resources_of_type("AWS::Serverless::Function");

    // Queues consumed by an event source get the local visibility timeout.
    let mut consumed = Vec::new();
    for function in &functions {
        for (_, event) in events(template, function)? {
            if event.get("Type").and_then(Value::as_str) == Some("SQS") {
                consumed.push(getatt_logical(event.get("Properties").and_then(|p| p.get("Queue"))));
            }
        }
    }

    let mut queues = BTreeMap::new();
    let mut pending = template.resources_of_type("AWS::SQS::Queue");
    // Dead-letter queues first: a redrive policy names its target's ARN.
    pending.sort_by_key(|id| {
        template.get(id, &["Properties", "RedrivePolicy"]).ok().flatten().is_some()
    });
    for logical in pending {
        if !enabled(template, &resolver, &logical)? {
            continue;
        }
        let queue = create_queue(template, &resolver, clients, &logical, &consumed, overrides)
            .await
            .with_context(|| format!("creating queue {logical}"))?;
        resolver.refs.insert(logical.clone(), queue.url.clone());
        resolver.attributes.insert(format!("{logical}.Arn"), queue.arn.clone());
        resolver.attributes.insert(format!("{logical}.QueueName"), queue.name.clone());
        queues.insert(logical, queue);
    }

    let mut topics = BTreeMap::new();
    for logical in template.resources_of_type("AWS::SNS::Topic") {
        if !enabled(template, &resolver, &logical)? {
            continue;
        }
        let name = resolver.required(template.require(&logical, &["Properties", "TopicName"])?)?;
        let arn = clients
            .sns
            .create_topic()
            .name(&name)
            .send()
            .await
            .with_context(|| format!("creating topic {logical}"))?
            .topic_arn
            .ok_or_else(|| anyhow!("CreateTopic answered without an ARN"))?;
        resolver.refs.insert(logical.clone(), arn.clone());
        topics.insert(logical, arn);
    }

    let table = format!("{stack}-suppressions");
    check_table_design(template, &resolver)?;
    suppression_store::schema::create_table(&clients.dynamodb, &table)
        .await
        .context("creating the suppression table with suppression_store::schema")?;
    let described = clients.dynamodb.describe_table().table_name(&table).send().await?;
    let description = described.table().ok_or_else(|| anyhow!("DescribeTable: no table"))?;
    let stream_arn = description
        .latest_stream_arn()
        .ok_or_else(|| anyhow!("the table was created without a stream"))?
        .to_owned();
    let table_logical = template
        .resources_of_type("AWS::DynamoDB::Table")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the template declares no DynamoDB table"))?;
    resolver.refs.insert(table_logical.clone(), table.clone());
    resolver.attributes.insert(
        format!("{table_logical}.Arn"),
        description.table_arn().unwrap_or_default().to_owned(),
    );
    resolver.attributes.insert(format!("{table_logical}.StreamArn"), stream_arn.clone());

    let mut subscriptions = Vec::new();
    for logical in template.resources_of_type("AWS::SNS::Subscription") {
        if !enabled(template, &resolver, &logical)? {
            continue;
        }
        let props = |name: &str| template.get(&logical, &["Properties", name]);
        let protocol =
            resolver.required(template.require(&logical, &["Properties", "Protocol"])?)?;
        let topic = resolver.required(template.require(&logical, &["Properties", "TopicArn"])?)?;
        let endpoint =
            resolver.required(template.require(&logical, &["Properties", "Endpoint"])?)?;
        let raw = match props("RawMessageDelivery")? {
            Some(v) => resolver.required(v)? == "true",
            None => false,
        };
        clients
            .sns
            .subscribe()
            .topic_arn(&topic)
            .protocol(&protocol)
            .endpoint(&endpoint)
            .attributes("RawMessageDelivery", raw.to_string())
            .send()
            .await
            .with_context(|| format!("creating subscription {logical}"))?;
        let topic_logical = topics.iter().find(|(_, a)| **a == topic).map(|(l, _)| l.clone());
        let queue_logical =
            queues.values().find(|q| q.arn == endpoint).map(|q| q.logical_id.clone());
        subscriptions.push((
            topic_logical.unwrap_or(topic),
            queue_logical.unwrap_or(endpoint),
            raw,
        ));
    }

    let mut secret_arn = None;
    for logical in template.resources_of_type("AWS::SecretsManager::Secret") {
        if !enabled(template, &resolver, &logical)? {
            continue;
        }
        let name = resolver.required(template.require(&logical, &["Properties", "Name"])?)?;
        // The template's value is a placeholder the operator replaces after deploying; the local
        // stack puts the simulator's key in right away.
        let arn = clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(mailcow_api_key)
            .send()
            .await
            .with_context(|| format!("creating secret {logical}"))?
            .arn
            .ok_or_else(|| anyhow!("CreateSecret answered without an ARN"))?;
        resolver.refs.insert(logical, arn.clone());
        secret_arn = Some(arn);
    }

    for function in &functions {
        let name =
            resolver.required(template.require(function, &["Properties", "FunctionName"])?)?;
        resolver.refs.insert(function.clone(), name);
    }
    let mut specs = Vec::new();
    for function in &functions {
        specs.push(
            function_spec(template, &resolver, function, overrides)
                .with_context(|| format!("reading function {function}"))?,
        );
    }

    Ok(Topology {
        stack: stack.to_owned(),
        region: region.to_owned(),
        queues,
        topics,
        subscriptions,
        table,
        stream_arn,
        secret_arn,
        functions: specs,
    })
}

async fn create_queue(
    template: &Template,
    resolver: &Resolver<'_>,
    clients: &AwsClients,
    logical: &str,
    consumed: &[Option<String>],
    overrides: &LocalOverrides,
) -> anyhow::Result<Queue> {
    let prop = |name: &str| template.get(logical, &["Properties", name]);
    let name = resolver.required(template.require(logical, &["Properties", "QueueName"])?)?;
    let mut request = clients.sqs.create_queue().queue_name(&name);

    let template_visibility = match prop("VisibilityTimeout")? {
        Some(v) => Some(u32::try_from(resolver.number(v)?)?),
        None => None,
    };
    let is_consumed = consumed.iter().flatten().any(|q| q == logical);
    let visibility = match (template_visibility, is_consumed) {
        (Some(t), true) => t.min(overrides.visibility_timeout),
        (None, true) => overrides.visibility_timeout,
        (Some(t), false) => t,
        (None, false) => 30,
    };
    request = request.attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string());
    if let Some(v) = prop("MessageRetentionPeriod")? {
        request =
            request.attributes(QueueAttributeName::MessageRetentionPeriod, resolver.required(v)?);
    }
    let mut redrive = None;
    if let Some(policy) = prop("RedrivePolicy")? {
        let target =
            policy.get("deadLetterTargetArn").ok_or_else(|| anyhow!("no deadLetterTargetArn"))?;
        let target_logical = getatt_logical(Some(target))
            .ok_or_else(|| anyhow!("deadLetterTargetArn is not a !GetAtt"))?;
        let arn = resolver.required(target)?;
        let max = policy.get("maxReceiveCount").ok_or_else(|| anyhow!("no maxReceiveCount"))?;
        let max = u32::try_from(resolver.number(max)?)?;
        let json = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max});
        request = request.attributes(QueueAttributeName::RedrivePolicy, json.to_string());
        redrive = Some((target_logical, max));
    }
    let url = request
        .send()
        .await?
        .queue_url
        .ok_or_else(|| anyhow!("CreateQueue answered without a URL"))?;
    let arn = format!("arn:aws:sqs:{}:{ACCOUNT_ID}:{name}", resolver.region);
    Ok(Queue {
        logical_id: logical.to_owned(),
        name,
        url,
        arn,
        visibility_timeout: visibility,
        template_visibility,
        redrive,
    })
}

/// Whether a resource exists with the local parameter values (its `Condition`, if any, holds).
fn enabled(template: &Template, resolver: &Resolver<'_>, logical: &str) -> anyhow::Result<bool> {
    match template.get(logical, &["Condition"])?.and_then(Value::as_str) {
        Some(condition) => resolver.condition(condition),
        None => Ok(true),
    }
}

/// The table the store crate creates must be the one the template declares: same keys, indexes,
/// TTL attribute and stream view. A difference is a bug in one of the two.
fn check_table_design(template: &Template, resolver: &Resolver<'_>) -> anyhow::Result<()> {
    use suppression_store::schema;

    let logical = template
        .resources_of_type("AWS::DynamoDB::Table")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the template declares no DynamoDB table"))?;
    let prop = |path: &[&str]| -> anyhow::Result<String> {
        let mut full = vec!["Properties"];
        full.extend_from_slice(path);
        resolver.required(template.require(&logical, &full)?)
    };
    let keys = template.require(&logical, &["Properties", "KeySchema"])?;
    let key_names: Vec<String> = keys
        .as_sequence()
        .map(|k| {
            k.iter().filter_map(|e| e.get("AttributeName")?.as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    let indexes: Vec<String> = template
        .require(&logical, &["Properties", "GlobalSecondaryIndexes"])?
        .as_sequence()
        .map(|i| i.iter().filter_map(|e| e.get("IndexName")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let mismatch = |what: &str, template_value: &str, schema_value: &str| {
        anyhow!(
            "infra/template.yaml and suppression_store::schema disagree on the {what}: \
             {template_value:?} vs {schema_value:?}"
        )
    };
    if key_names != [schema::PK, schema::SK] {
        return Err(mismatch(
            "key schema",
            &key_names.join(","),
            &[schema::PK, schema::SK].join(","),
        ));
    }
    let wanted = [schema::BY_STATE_REASON, schema::BY_DOMAIN];
    if indexes.len() != wanted.len() || wanted.iter().any(|w| !indexes.iter().any(|i| i == w)) {
        return Err(mismatch("indexes", &indexes.join(","), &wanted.join(",")));
    }
    let ttl = prop(&["TimeToLiveSpecification", "AttributeName"])?;
    if ttl != schema::TTL {
        return Err(mismatch("TTL attribute", &ttl, schema::TTL));
    }
    let view = prop(&["StreamSpecification", "StreamViewType"])?;
    if view != "NEW_AND_OLD_IMAGES" {
        return Err(mismatch("stream view", &view, "NEW_AND_OLD_IMAGES"));
    }
    Ok(())
}

fn events<'t>(template: &'t Template, function: &str) -> anyhow::Result<Vec<(String, &'t Value)>> {
    let Some(events) = template.get(function, &["Properties", "Events"])? else {
        return Ok(Vec::new());
    };
    Ok(events
        .as_mapping()
        .map(|m| m.iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v))).collect())
        .unwrap_or_default())
}

/// The logical id in `!GetAtt Logical.Attribute`.
fn getatt_logical(value: Option<&Value>) -> Option<String> {
    let Some(Value::Tagged(tagged)) = value else { return None };
    if tagged.tag.to_string().trim_start_matches('!') != "GetAtt" {
        return None;
    }
    let text = match &tagged.value {
        Value::Sequence(parts) => parts.first()?.as_str()?.to_owned(),
        other => other.as_str()?.split('.').next()?.to_owned(),
    };
    Some(text)
}

fn function_spec(
    template: &Template,
    resolver: &Resolver<'_>,
    logical: &str,
    overrides: &LocalOverrides,
) -> anyhow::Result<FunctionSpec> {
    let prop = |name: &str| template.get(logical, &["Properties", name]);
    let number = |name: &str, default: u32| -> anyhow::Result<u32> {
        match prop(name)? {
            Some(v) => Ok(u32::try_from(resolver.number(v)?)?),
            None => Ok(default),
        }
    };
    let binary = template
        .get(logical, &["Metadata", "BuildProperties", "Binary"])?
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{logical} names no Metadata.BuildProperties.Binary"))?
        .to_owned();
    let mut environment = BTreeMap::new();
    if let Some(vars) =
        prop("Environment")?.and_then(|e| e.get("Variables")).and_then(Value::as_mapping)
    {
        for (name, value) in vars {
            let Some(name) = name.as_str() else { continue };
            if let Some(value) =
                resolver.string(value).with_context(|| format!("variable {name}"))?
            {
                environment.insert(name.to_owned(), value);
            }
        }
    }

    let mut sqs = Vec::new();
    let mut streams = Vec::new();
    let mut schedules = Vec::new();
    for (name, event) in events(template, logical)? {
        let kind = event.get("Type").and_then(Value::as_str).unwrap_or_default();
        let props = event.get("Properties");
        let get = |key: &str| props.and_then(|p| p.get(key));
        let num = |key: &str, default: u64| -> anyhow::Result<u64> {
            get(key).map_or(Ok(default), |v| resolver.number(v))
        };
        let reports = get("FunctionResponseTypes")
            .and_then(Value::as_sequence)
            .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures")));
        let window = u32::try_from(num("MaximumBatchingWindowInSeconds", 0)?)?
            .min(overrides.max_batching_window);
        match kind {
            "SQS" => sqs.push(SqsSource {
                queue: getatt_logical(get("Queue"))
                    .ok_or_else(|| anyhow!("event {name}: Queue is not a !GetAtt"))?,
                batch_size: u32::try_from(num("BatchSize", 10)?)?,
                batching_window: window,
                report_failures: reports,
            }),
            "DynamoDB" => {
                let filters = get("FilterCriteria")
                    .and_then(|f| f.get("Filters"))
                    .and_then(Value::as_sequence)
                    .map(|filters| {
                        filters
                            .iter()
                            .filter_map(|f| f.get("Pattern")?.as_str())
                            .map(serde_json::from_str)
                            .collect::<Result<Vec<serde_json::Value>, _>>()
                    })
                    .transpose()
                    .with_context(|| format!("event {name}: a filter pattern is not JSON"))?
                    .unwrap_or_default();
                let on_failure = getatt_logical(
                    get("DestinationConfig")
                        .and_then(|d| d.get("OnFailure"))
                        .and_then(|d| d.get("Destination")),
                );
                streams.push(StreamSource {
                    batch_size: u32::try_from(num("BatchSize", 100)?)?,
                    batching_window: window,
                    max_retries: u32::try_from(num("MaximumRetryAttempts", 10_000)?)?,
                    filters,
                    on_failure,
                    report_failures: reports,
                });
            }
            "Schedule" => {
                if let Some(expression) = get("Schedule") {
                    schedules.push(resolver.required(expression)?);
                }
            }
            other => bail!("event {name}: event type {other} is not emulated"),
        }
    }
    let dead_letter_queue =
        getatt_logical(prop("DeadLetterQueue")?.and_then(|d| d.get("TargetArn")));
    let async_retries = match prop("EventInvokeConfig")?.and_then(|c| c.get("MaximumRetryAttempts"))
    {
        Some(v) => u32::try_from(resolver.number(v)?)?,
        None => 2,
    };

    Ok(FunctionSpec {
        logical_id: logical.to_owned(),
        name: resolver.required(template.require(logical, &["Properties", "FunctionName"])?)?,
        binary,
        timeout: number("Timeout", 3)?,
        memory: number("MemorySize", 128)?,
        environment,
        sqs,
        streams,
        schedules,
        dead_letter_queue,
        async_retries,
    })
}
