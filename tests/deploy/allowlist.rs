//! The names the deployment descriptors may use, taken from the platform
//! references (each list names its source), and a checker that reports
//! every key of a descriptor that is not in them, with its path.
//!
//! A key outside these lists is either a typo or a property the platform
//! does not have (e.g. FC 2.0's `CAPort` on an FC 3.0 function): ROS and the
//! fc3 component would reject it, or worse, ignore it.

use yaml_rust2::Yaml;

/// What a value in a descriptor may look like.
#[derive(Clone, Copy)]
pub enum Shape {
    /// A scalar, a list of scalars, or a ROS intrinsic function.
    Value,
    /// A mapping with free keys (environment variables, `vars`).
    AnyKeys,
    /// A mapping with only these keys.
    Fields(&'static [(&'static str, Shape)]),
    /// A list whose items have this shape.
    Items(&'static Shape),
    /// A trigger's configuration: its keys depend on the trigger type,
    /// checked with [`trigger_config`].
    TriggerConfig,
}

use Shape::{AnyKeys, Fields, Items, TriggerConfig, Value};

// ------------------------------------------------------------------- ROS

/// Top-level sections of a ROS template, and the keys of a parameter and a
/// resource: https://help.aliyun.com/zh/ros/user-guide/template-structure,
/// .../parameters, .../resources.
pub const ROS_TEMPLATE: Shape = Fields(&[
    ("ROSTemplateFormatVersion", Value),
    ("Description", Value),
    ("Metadata", AnyKeys),
    ("Parameters", AnyKeys),
    ("Mappings", AnyKeys),
    ("Conditions", AnyKeys),
    ("Resources", AnyKeys),
    ("Outputs", AnyKeys),
]);

/// Keys of one ROS parameter.
pub const ROS_PARAMETER: Shape = Fields(&[
    ("Type", Value),
    ("Default", Value),
    ("NoEcho", Value),
    ("AllowedValues", Value),
    ("AllowedPattern", Value),
    ("MinLength", Value),
    ("MaxLength", Value),
    ("ConstraintDescription", Value),
    ("Description", Value),
    ("Label", Value),
]);

/// Keys of one ROS resource (its `Properties` are checked per type).
pub const ROS_RESOURCE: Shape = Fields(&[
    ("Type", Value),
    ("Properties", AnyKeys),
    ("Condition", Value),
    ("DependsOn", Value),
    ("Metadata", AnyKeys),
]);

/// Keys of one ROS output.
pub const ROS_OUTPUT: Shape = Fields(&[
    ("Description", Value),
    ("Value", Value),
    ("Condition", Value),
]);

const HOOK: Shape = Fields(&[("Handler", Value), ("Timeout", Value)]);

/// `ALIYUN::FC3::Function`:
/// https://help.aliyun.com/zh/ros/developer-reference/aliyun-fc3-function
/// (nested shapes as in the ROS CDK's `RosFunction`, ros-cdk-fc3).
pub const FC3_FUNCTION: Shape = Fields(&[
    ("FunctionName", Value),
    ("Handler", Value),
    ("Runtime", Value),
    ("Cpu", Value),
    ("CustomContainerConfig", AnyKeys),
    (
        "Code",
        Fields(&[
            ("ZipFile", Value),
            ("SourceCode", Value),
            ("OssBucketName", Value),
            ("OssObjectName", Value),
            ("Checksum", Value),
        ]),
    ),
    (
        "CustomRuntimeConfig",
        Fields(&[
            ("Command", Value),
            ("Args", Value),
            ("Port", Value),
            (
                "HealthCheckConfig",
                Fields(&[
                    ("HttpGetUrl", Value),
                    ("InitialDelaySeconds", Value),
                    ("PeriodSeconds", Value),
                    ("TimeoutSeconds", Value),
                    ("FailureThreshold", Value),
                    ("SuccessThreshold", Value),
                ]),
            ),
        ]),
    ),
    ("CustomDns", AnyKeys),
    ("Description", Value),
    ("DiskSize", Value),
    ("EnvironmentVariables", AnyKeys),
    ("GpuConfig", AnyKeys),
    (
        "InstanceLifecycleConfig",
        Fields(&[("Initializer", HOOK), ("PreStop", HOOK)]),
    ),
    ("InternetAccess", Value),
    ("InstanceConcurrency", Value),
    ("Layers", Value),
    (
        "LogConfig",
        Fields(&[
            ("Project", Value),
            ("Logstore", Value),
            ("LogBeginRule", Value),
            ("EnableInstanceMetrics", Value),
            ("EnableRequestMetrics", Value),
        ]),
    ),
    ("MemorySize", Value),
    ("NasConfig", AnyKeys),
    ("OssMountConfig", AnyKeys),
    ("Role", Value),
    ("TracingConfig", AnyKeys),
    ("Timeout", Value),
    (
        "VpcConfig",
        Fields(&[
            ("VpcId", Value),
            ("VSwitchIds", Value),
            ("SecurityGroupId", Value),
        ]),
    ),
    ("DisableOndemand", Value),
    ("SessionAffinityConfig", AnyKeys),
    ("InstanceIsolationMode", Value),
    ("SessionAffinity", Value),
    ("Tags", Value),
]);

/// `ALIYUN::FC3::Trigger`:
/// https://www.alibabacloud.com/help/en/ros/developer-reference/aliyun-fc3-trigger
pub const FC3_TRIGGER: Shape = Fields(&[
    ("FunctionName", Value),
    ("TriggerType", Value),
    ("TriggerName", Value),
    ("TriggerConfig", TriggerConfig),
    ("Description", Value),
    ("InvocationRole", Value),
    ("Qualifier", Value),
    ("SourceArn", Value),
]);

/// The ROS resource types a template may use, with their properties.
pub const ROS_TYPES: &[(&str, Shape)] = &[
    ("ALIYUN::FC3::Function", FC3_FUNCTION),
    ("ALIYUN::FC3::Trigger", FC3_TRIGGER),
];

// ------------------------------------------------------ trigger configs

/// `triggerConfig` of each trigger type. ROS hands `TriggerConfig` to the
/// FC 3.0 API unchanged, so both descriptors use the API's names:
/// HTTPTriggerConfig, TimerTriggerConfig, EventBridgeTriggerConfig and its
/// parts (https://help.aliyun.com/zh/functioncompute/api-fc-2023-03-30-struct-eventbridgetriggerconfig,
/// api-fc-2023-03-30-struct-sourcemnsparameters, api-fc-2023-03-30-struct-runoptions),
/// tabulated in devsapp/fc3 docs/zh/yaml/triggers.md.
pub fn trigger_config(trigger_type: &str) -> Option<Shape> {
    const HTTP: Shape = Fields(&[
        ("authType", Value),
        ("authConfig", AnyKeys),
        ("disableURLInternet", Value),
        ("methods", Value),
    ]);
    const TIMER: Shape = Fields(&[
        ("cronExpression", Value),
        ("enable", Value),
        ("payload", Value),
    ]);
    const EVENTBRIDGE: Shape = Fields(&[
        ("triggerEnable", Value),
        ("asyncInvocationType", Value),
        ("eventRuleFilterPattern", Value),
        (
            "eventSourceConfig",
            Fields(&[
                ("eventSourceType", Value),
                (
                    "eventSourceParameters",
                    Fields(&[
                        (
                            "sourceMNSParameters",
                            Fields(&[
                                ("QueueName", Value),
                                ("IsBase64Decode", Value),
                                ("RegionId", Value),
                            ]),
                        ),
                        ("sourceRocketMQParameters", AnyKeys),
                        ("sourceRabbitMQParameters", AnyKeys),
                        ("sourceKafkaParameters", AnyKeys),
                        ("sourceDTSParameters", AnyKeys),
                    ]),
                ),
            ]),
        ),
        (
            "eventSinkConfig",
            Fields(&[(
                "deliveryOption",
                Fields(&[
                    ("mode", Value),
                    ("eventSchema", Value),
                    ("concurrency", Value),
                ]),
            )]),
        ),
        (
            "runOptions",
            Fields(&[
                ("mode", Value),
                ("errorsTolerance", Value),
                ("maximumTasks", Value),
                (
                    "retryStrategy",
                    Fields(&[
                        ("PushRetryStrategy", Value),
                        ("MaximumEventAgeInSeconds", Value),
                        ("MaximumRetryAttempts", Value),
                    ]),
                ),
                ("deadLetterQueue", Fields(&[("Arn", Value)])),
                (
                    "batchWindow",
                    Fields(&[("CountBasedWindow", Value), ("TimeBasedWindow", Value)]),
                ),
            ]),
        ),
    ]);
    match trigger_type {
        "http" => Some(HTTP),
        "timer" => Some(TIMER),
        "eventbridge" => Some(EVENTBRIDGE),
        _ => None,
    }
}

// ------------------------------------------------------------------- fc3

/// A Serverless Devs 3 project file: https://docs.serverless-devs.com
/// (YAML spec: edition, name, access, vars, resources, template, flow).
pub const S_PROJECT: Shape = Fields(&[
    ("edition", Value),
    ("name", Value),
    ("access", Value),
    ("vars", AnyKeys),
    ("template", AnyKeys),
    ("flow", AnyKeys),
    ("resources", AnyKeys),
]);

/// One resource of a Serverless Devs project.
pub const S_RESOURCE: Shape = Fields(&[
    ("component", Value),
    ("props", AnyKeys),
    ("actions", AnyKeys),
]);

const FC3_HOOK: Shape = Fields(&[("handler", Value), ("timeout", Value), ("command", Value)]);

const FC3_TRIGGER_ITEM: Shape = Fields(&[
    ("triggerName", Value),
    ("triggerType", Value),
    ("triggerConfig", TriggerConfig),
    ("qualifier", Value),
    ("description", Value),
    ("invocationRole", Value),
    ("sourceArn", Value),
]);

/// The fc3 component's `props`: devsapp/fc3 src/schema.json (the
/// component's own validation schema) and docs/zh/yaml/readme.md.
pub const FC3_PROPS: Shape = Fields(&[
    ("region", Value),
    ("functionName", Value),
    ("description", Value),
    ("runtime", Value),
    // A local folder or zip, or {ossBucketName, ossObjectName}.
    ("code", Value),
    ("handler", Value),
    (
        "customRuntimeConfig",
        Fields(&[
            ("command", Value),
            ("args", Value),
            ("port", Value),
            ("healthCheckConfig", AnyKeys),
        ]),
    ),
    ("customContainerConfig", AnyKeys),
    ("customDNS", AnyKeys),
    (
        "instanceLifecycleConfig",
        Fields(&[("initializer", FC3_HOOK), ("preStop", FC3_HOOK)]),
    ),
    ("cpu", Value),
    ("memorySize", Value),
    ("diskSize", Value),
    ("timeout", Value),
    ("instanceConcurrency", Value),
    ("instanceIsolationMode", Value),
    ("internetAccess", Value),
    ("environmentVariables", AnyKeys),
    ("layers", Value),
    // `auto`, or a structure.
    ("logConfig", Value),
    ("vpcConfig", Value),
    ("nasConfig", Value),
    ("ossMountConfig", Value),
    ("role", Value),
    ("gpuConfig", AnyKeys),
    ("tracingConfig", AnyKeys),
    ("asyncInvokeConfig", AnyKeys),
    ("concurrencyConfig", AnyKeys),
    ("provisionConfig", AnyKeys),
    ("scalingConfig", AnyKeys),
    ("sessionAffinity", Value),
    ("sessionAffinityConfig", AnyKeys),
    ("tags", Value),
    ("resourceGroupId", Value),
    ("vpcBinding", AnyKeys),
    ("triggers", Items(&FC3_TRIGGER_ITEM)),
]);

// --------------------------------------------------------------- checker

/// A ROS intrinsic function (`Ref`, `Fn::…`) stands for a value of any shape.
fn is_intrinsic(value: &Yaml) -> bool {
    value.as_hash().is_some_and(|h| {
        h.len() == 1
            && h.keys()
                .next()
                .and_then(Yaml::as_str)
                .is_some_and(|k| k == "Ref" || k.starts_with("Fn::"))
    })
}

/// Appends to `problems` every key under `value` (at `path`) that `shape`
/// does not allow. A trigger configuration is checked against the trigger
/// type beside it (`TriggerType` in ROS, `triggerType` in fc3).
pub fn check(value: &Yaml, shape: Shape, path: &str, problems: &mut Vec<String>) {
    match shape {
        Value | AnyKeys | TriggerConfig => {}
        Items(item) => match value.as_vec() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(v, *item, &format!("{path}[{i}]"), problems);
                }
            }
            None if is_intrinsic(value) => {}
            None => problems.push(format!("{path}: expected a list")),
        },
        Fields(fields) => {
            if is_intrinsic(value) {
                return;
            }
            let Some(map) = value.as_hash() else {
                problems.push(format!("{path}: expected a mapping, found {value:?}"));
                return;
            };
            for (key, child) in map {
                let Some(key) = key.as_str() else {
                    problems.push(format!("{path}: a key that is not a string: {key:?}"));
                    continue;
                };
                let child_path = format!("{path}.{key}");
                match fields.iter().find(|(name, _)| *name == key) {
                    None => problems.push(format!(
                        "{child_path}: `{key}` is not a documented property here"
                    )),
                    Some((_, TriggerConfig)) => {
                        let type_key = if key == "TriggerConfig" {
                            "TriggerType"
                        } else {
                            "triggerType"
                        };
                        let kind = value[type_key].as_str().unwrap_or("");
                        match trigger_config(kind) {
                            Some(shape) => check(child, shape, &child_path, problems),
                            None => problems.push(format!(
                                "{path}.{type_key}: trigger type `{kind}` is not in the allow-list"
                            )),
                        }
                    }
                    Some((_, shape)) => check(child, *shape, &child_path, problems),
                }
            }
        }
    }
}
