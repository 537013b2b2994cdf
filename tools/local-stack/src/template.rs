//! Reading `infra/template.yaml`: resources, properties and the CloudFormation intrinsics the
//! local stack needs to resolve (`!Ref`, `!Sub`, `!GetAtt`, `!If`, `!Equals`, `!Not`, `!Join`).
//!
//! The template is the one description of the topology; this module only reads it. It knows
//! nothing about moto or the functions, and it resolves references through values the caller
//! supplies (physical ids of created resources, parameter values).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_yaml_ng::Value;

/// Account id moto uses by default; ARNs built here must match the ones moto hands out.
pub const ACCOUNT_ID: &str = "123456789012";

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    /// Reads and parses a template file.
    ///
    /// Fails when the file cannot be read or is not YAML with a `Resources` mapping.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the template {}", path.display()))?;
        Self::parse(&text)
    }

    /// Parses template text.
    ///
    /// Fails when the text is not YAML with a `Resources` mapping.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let root: Value = serde_yaml_ng::from_str(text).context("the template is not YAML")?;
        if !root.get("Resources").is_some_and(Value::is_mapping) {
            bail!("the template has no Resources mapping");
        }
        Ok(Self { root })
    }

    /// Logical ids of the resources of one type, in template order.
    pub fn resources_of_type(&self, kind: &str) -> Vec<String> {
        let Some(resources) = self.root.get("Resources").and_then(Value::as_mapping) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(id, _)| id.as_str().map(str::to_owned))
            .collect()
    }

    /// A resource by logical id.
    ///
    /// Fails when the template has no such resource.
    pub fn resource(&self, logical_id: &str) -> anyhow::Result<&Value> {
        self.root
            .get("Resources")
            .and_then(|r| r.get(logical_id))
            .ok_or_else(|| anyhow!("the template has no resource {logical_id}"))
    }

    /// A value under a resource, by path (`["Properties", "RedrivePolicy"]`); `None` if absent.
    ///
    /// Fails when the template has no such resource.
    pub fn get(&self, logical_id: &str, path: &[&str]) -> anyhow::Result<Option<&Value>> {
        let mut value = self.resource(logical_id)?;
        for key in path {
            match value.get(*key) {
                Some(next) => value = next,
                None => return Ok(None),
            }
        }
        Ok(Some(value))
    }

    /// A property that must be present.
    ///
    /// Fails when the resource or the property is missing.
    pub fn require(&self, logical_id: &str, path: &[&str]) -> anyhow::Result<&Value> {
        self.get(logical_id, path)?
            .ok_or_else(|| anyhow!("{logical_id} has no {} in the template", path.join(".")))
    }

    fn parameter_default(&self, name: &str) -> Option<String> {
        let default = self.root.get("Parameters")?.get(name)?.get("Default")?;
        scalar(default)
    }

    fn is_parameter(&self, name: &str) -> bool {
        self.root.get("Parameters").and_then(|p| p.get(name)).is_some()
    }

    fn condition(&self, name: &str) -> Option<&Value> {
        self.root.get("Conditions")?.get(name)
    }
}

/// What references resolve to: parameter values (over the template's defaults), the physical
/// ids of resources (`!Ref`) and their attributes (`!GetAtt X.Arn`).
#[derive(Debug, Clone)]
pub struct Resolver<'t> {
    template: &'t Template,
    /// `AWS::StackName`.
    pub stack: String,
    /// `AWS::Region`.
    pub region: String,
    /// Parameter values that replace the defaults (and give parameters without one a value).
    pub parameters: HashMap<String, String>,
    /// `!Ref` of a resource: queue URL, topic ARN, table name, secret ARN, function name.
    pub refs: HashMap<String, String>,
    /// `!GetAtt Logical.Attribute`, keyed `Logical.Attribute`.
    pub attributes: HashMap<String, String>,
}

impl<'t> Resolver<'t> {
    /// A resolver with no resources known yet.
    pub fn new(template: &'t Template, stack: &str, region: &str) -> Self {
        Self {
            template,
            stack: stack.to_owned(),
            region: region.to_owned(),
            parameters: HashMap::new(),
            refs: HashMap::new(),
            attributes: HashMap::new(),
        }
    }

    /// Resolves a value to a string; `None` for `AWS::NoValue` (and an `!If` that picks it).
    ///
    /// Fails for a reference to something not known (yet) or an unsupported intrinsic.
    pub fn string(&self, value: &Value) -> anyhow::Result<Option<String>> {
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Value::Sequence(items) => {
                let parts: anyhow::Result<Vec<Option<String>>> =
                    items.iter().map(|v| self.string(v)).collect();
                Ok(Some(parts?.into_iter().flatten().collect::<Vec<_>>().join(",")))
            }
            other => scalar(other)
                .map(Some)
                .ok_or_else(|| anyhow!("cannot resolve {other:?} to a string")),
        }
    }

    /// Like [`Resolver::string`], but the value must resolve to something.
    ///
    /// Fails when it resolves to `AWS::NoValue` or cannot be resolved.
    pub fn required(&self, value: &Value) -> anyhow::Result<String> {
        self.string(value)?.ok_or_else(|| anyhow!("{value:?} resolves to no value"))
    }

    /// Resolves a number (a literal or a `!Ref` to a numeric parameter).
    ///
    /// Fails when the value is not a whole number.
    pub fn number(&self, value: &Value) -> anyhow::Result<u64> {
        let text = self.required(value)?;
        text.parse().with_context(|| format!("{text:?} is not a whole number"))
    }

    /// Evaluates a named condition of the template.
    ///
    /// Fails when the condition does not exist or uses an unsupported function.
    pub fn condition(&self, name: &str) -> anyhow::Result<bool> {
        let expression = self
            .template
            .condition(name)
            .ok_or_else(|| anyhow!("the template has no condition {name}"))?;
        self.truth(expression)
    }

    fn truth(&self, value: &Value) -> anyhow::Result<bool> {
        let Value::Tagged(tagged) = value else { bail!("condition {value:?} is not a function") };
        let tag = tagged.tag.to_string();
        let args = tagged.value.as_sequence();
        match (tag.trim_start_matches('!'), args) {
            ("Equals", Some(args)) if args.len() == 2 => {
                Ok(self.string(&args[0])?.unwrap_or_default()
                    == self.string(&args[1])?.unwrap_or_default())
            }
            ("Not", Some(args)) if args.len() == 1 => Ok(!self.truth(&args[0])?),
            ("Condition", None) => {
                let name = tagged.value.as_str().unwrap_or_default();
                self.condition(name)
            }
            (other, _) => bail!("unsupported condition function {other}"),
        }
    }

    fn intrinsic(&self, tag: &str, arg: &Value) -> anyhow::Result<Option<String>> {
        match tag {
            "Ref" => {
                let name = arg.as_str().ok_or_else(|| anyhow!("!Ref of a non-string"))?;
                self.reference(name)
            }
            "GetAtt" => {
                let name = match arg {
                    Value::Sequence(parts) => {
                        parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".")
                    }
                    other => other.as_str().unwrap_or_default().to_owned(),
                };
                self.attributes
                    .get(&name)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| anyhow!("!GetAtt {name} is not known (yet)"))
            }
            "Sub" => {
                let text =
                    arg.as_str().ok_or_else(|| anyhow!("!Sub with variables is not supported"))?;
                self.substitute(text).map(Some)
            }
            "If" => {
                let args = arg.as_sequence().filter(|a| a.len() == 3);
                let args = args.ok_or_else(|| anyhow!("!If needs three arguments"))?;
                let name = args[0].as_str().unwrap_or_default();
                let pick = if self.condition(name)? { &args[1] } else { &args[2] };
                self.string(pick)
            }
            "Join" => {
                let args = arg.as_sequence().filter(|a| a.len() == 2);
                let args = args.ok_or_else(|| anyhow!("!Join needs two arguments"))?;
                let separator = args[0].as_str().unwrap_or_default();
                match &args[1] {
                    Value::Sequence(items) => {
                        let parts: anyhow::Result<Vec<Option<String>>> =
                            items.iter().map(|v| self.string(v)).collect();
                        Ok(Some(parts?.into_iter().flatten().collect::<Vec<_>>().join(separator)))
                    }
                    // A CommaDelimitedList parameter: its value, joined with the separator.
                    other => Ok(self
                        .string(other)?
                        .map(|list| list.split(',').collect::<Vec<_>>().join(separator))),
                }
            }
            other => bail!("unsupported intrinsic function !{other}"),
        }
    }

    fn reference(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(Some(match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::StackName" => self.stack.clone(),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => ACCOUNT_ID.to_owned(),
            "AWS::Partition" => "aws".to_owned(),
            _ if self.template.is_parameter(name) => self
                .parameters
                .get(name)
                .cloned()
                .or_else(|| self.template.parameter_default(name))
                .ok_or_else(|| anyhow!("parameter {name} has no default and no local value"))?,
            _ => self
                .refs
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("!Ref {name} is not known (yet)"))?,
        }))
    }

    /// Replaces `${Name}` and `${Logical.Attribute}` in a `!Sub` string.
    fn substitute(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| anyhow!("unterminated ${{ in {text:?}"))?;
            let name = &after[..end];
            let value = if name.contains('.') && !name.starts_with("AWS::") {
                self.attributes
                    .get(name)
                    .cloned()
                    .ok_or_else(|| anyhow!("${{{name}}} is not known (yet)"))?
            } else {
                self.reference(name)?.unwrap_or_default()
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Size: {Type: Number, Default: 10}
  Url: {Type: String}
  Subnets: {Type: CommaDelimitedList, Default: ""}
  Secret: {Type: String, Default: ""}
Conditions:
  NoSecret: !Equals [!Ref Secret, ""]
  InVpc: !Not [!Equals [!Join ["", !Ref Subnets], ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-feedback"
      BatchSize: !Ref Size
      Target: !GetAtt Other.Arn
      Picked: !If [NoSecret, !Ref Queue, !Ref Secret]
      Vpc: !If [InVpc, "yes", !Ref AWS::NoValue]
"#;

    #[test]
    fn intrinsics_resolve_against_parameters_and_known_resources() {
        let template = Template::parse(TEMPLATE).unwrap();
        let mut resolver = Resolver::new(&template, "demo", "eu-central-1");
        resolver.refs.insert("Queue".into(), "http://q".into());
        resolver.attributes.insert("Other.Arn".into(), "arn:aws:sqs:x:1:other".into());
        let prop = |name: &str| template.require("Queue", &["Properties", name]).unwrap();

        assert_eq!(resolver.required(prop("QueueName")).unwrap(), "demo-feedback");
        assert_eq!(resolver.number(prop("BatchSize")).unwrap(), 10);
        assert_eq!(resolver.required(prop("Target")).unwrap(), "arn:aws:sqs:x:1:other");
        assert_eq!(resolver.required(prop("Picked")).unwrap(), "http://q");
        assert_eq!(resolver.string(prop("Vpc")).unwrap(), None);

        resolver.parameters.insert("Size".into(), "3".into());
        resolver.parameters.insert("Secret".into(), "arn:secret".into());
        assert_eq!(resolver.number(prop("BatchSize")).unwrap(), 3);
        assert_eq!(resolver.required(prop("Picked")).unwrap(), "arn:secret");
    }

    #[test]
    fn unknown_references_and_parameters_without_value_are_errors() {
        let template = Template::parse(TEMPLATE).unwrap();
        let resolver = Resolver::new(&template, "demo", "eu-central-1");
        assert!(resolver.required(&Value::String("x".into())).is_ok());
        let target = template.require("Queue", &["Properties", "Target"]).unwrap();
        assert!(resolver.string(target).is_err(), "Other.Arn is not created yet");
        let url: Value = serde_yaml_ng::from_str("!Ref Url").unwrap();
        assert!(resolver.string(&url).unwrap_err().to_string().contains("no default"));
    }
}
