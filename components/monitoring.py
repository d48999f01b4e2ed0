"""ApiMonitoring: alarms, their SNS topic, a dashboard and the authorizer's decision metrics.

The alarms and their defaults are in `alarms`; the dashboard's body in `dashboard`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required, TypedDict

import pulumi
import pulumi_aws as aws

from ._validation import require_pattern
from .alarms import ALARMS, AlarmKind, AlarmOverride, AlarmRule, resolve_alarm_rules
from .connection_store import EXPIRY_INDEX, USER_ID_INDEX, ConnectionStore
from .dashboard import METRICS_NAMESPACE, DashboardSubject, dashboard_body
from .naming import physical_name
from .websocket_api import SecuredWebSocketApi

__all__ = ["ApiMonitoring", "ApiMonitoringArgs", "ApiMonitoringSettings"]

# The authorizer writes one JSON line per decision (`handlers.authorizer`); CloudWatch Logs
# counts them, so the hot path publishes nothing itself.
_DECISIONS = {
    "Allow": '{ $.logger = "authorizer" && $.outcome = "allow" }',
    "Deny": '{ $.logger = "authorizer" && $.outcome = "deny" }',
    "Error": '{ $.logger = "authorizer" && $.outcome = "error" }',
}
_EMAIL = r"[^@\s]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+"
_TOPIC_ARN = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?"


class ApiMonitoringSettings(TypedDict, total=False):
    """The plain-valued part of `ApiMonitoringArgs`, validated before anything is created."""

    alarm_email: str
    """An address subscribed to the alarms' topic (AWS mails it a confirmation link first)."""
    alarm_topic_arn: str
    """An SNS topic of yours for the alarms; the component creates one when absent."""
    alarms: Mapping[str, AlarmOverride]
    """Alarm key (see `alarms.ALARMS`) → changes to its default rule, e.g.
    `{"client_errors": {"threshold": 500}, "table_throttles": {"enabled": False}}`."""
    dashboard: bool
    """Declare the CloudWatch dashboard (default True; beyond three, each costs per month)."""


class ApiMonitoringArgs(ApiMonitoringSettings, total=False):
    """Arguments of `ApiMonitoring`: the settings, plus the API and the table it watches."""

    api: Required[SecuredWebSocketApi]
    """The API whose stage and functions are watched."""
    store: Required[ConnectionStore]
    """Its connection table (throttles of the table and its indexes are watched)."""


class ApiMonitoring(pulumi.ComponentResource):
    """CloudWatch alarms to one SNS topic, a dashboard, and the authorizer's decision metrics.

    The live connection count and the failed pushes come from the API's own functions
    (embedded metric format, namespace `WsAuth`, dimensions `ApiId` and `Stage`); the
    authorizer's allow/deny/error counts from metric filters over its log lines.
    """

    topic_arn: pulumi.Output[str]
    """The SNS topic the alarms notify."""
    alarm_names: dict[str, pulumi.Output[str]]
    """Alarm key → the alarm's name."""
    dashboard_name: pulumi.Output[str] | None
    """The dashboard's name (None without a dashboard)."""
    authorizer_metrics_namespace: pulumi.Output[str]
    """Namespace of the `Allow`, `Deny` and `Error` counts filtered from the authorizer's log."""

    @staticmethod
    def validate(settings: ApiMonitoringSettings) -> dict[str, AlarmRule]:
        """Check the plain settings; return each declared alarm's rule.

        Raises:
            ValueError: A setting is invalid; the message names it and what it accepts.
        """
        if settings.get("alarm_email") is not None:
            require_pattern("alarm_email", settings["alarm_email"], _EMAIL, "an email address")
        topic = settings.get("alarm_topic_arn")
        if isinstance(topic, str):
            require_pattern(
                "alarm_topic_arn",
                topic,
                _TOPIC_ARN,
                "an SNS topic ARN (arn:aws:sns:{region}:{account}:{name})",
            )
        if not isinstance(settings.get("dashboard", True), bool):
            raise ValueError(f"dashboard must be true or false; got {settings['dashboard']!r}")
        return resolve_alarm_rules(settings.get("alarms"))

    def __init__(
        self, name: str, args: ApiMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        for key in ("api", "store"):
            if args.get(key) is None:
                raise ValueError(f"{key} is required")
        rules = self.validate(args)
        super().__init__("wsauth:index:ApiMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api, store = args["api"], args["store"]

        topic_arn: pulumi.Input[str] | None = args.get("alarm_topic_arn")
        if topic_arn is None:
            topic_arn = aws.sns.Topic(
                f"{name}-alarms",
                # No encryption: with SNS's AWS-managed key, CloudWatch cannot publish.
                name=physical_name(name, "alarms", 256),
                opts=child,
            ).arn
        if args.get("alarm_email") is not None:
            aws.sns.TopicSubscription(
                f"{name}-alarm-email",
                topic=topic_arn,
                protocol="email",
                endpoint=args["alarm_email"],
                opts=child,
            )

        namespace = api.authorizer_function_name.apply(
            lambda function: f"{METRICS_NAMESPACE}/Authorizer/{function}"
        )
        for metric, pattern in _DECISIONS.items():
            aws.cloudwatch.LogMetricFilter(
                f"{name}-authorizer-{metric.lower()}",
                name=f"authorizer-{metric.lower()}",
                log_group_name=api.authorizer_log_group_name,
                pattern=pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=metric, namespace=namespace, value="1", unit="Count"
                ),
                opts=child,
            )

        alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for key, rule in rules.items():
            kind = ALARMS[key]
            alarms[key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{key.replace('_', '-')}",
                name=physical_name(name, key.replace("_", "-"), 255),
                alarm_description=(
                    f"{kind.title}. Means: {kind.meaning}. First: {kind.action}. "
                    "(README, 'Operating it')"
                ),
                comparison_operator=kind.comparison,
                threshold=rule.threshold,
                evaluation_periods=rule.evaluation_periods,
                datapoints_to_alarm=rule.datapoints_to_alarm,
                # A quiet API publishes nothing: no data is not an incident (except for the
                # heartbeat, which watches for exactly that).
                treat_missing_data=kind.missing_data,
                alarm_actions=[topic_arn],
                ok_actions=[topic_arn],
                **_watched_metric(kind, rule, api, store),
                opts=child,
            )

        self.authorizer_metrics_namespace = namespace
        self.topic_arn = pulumi.Output.from_input(topic_arn)
        self.alarm_names = {key: alarm.name for key, alarm in alarms.items()}
        self.dashboard_name = None
        if args.get("dashboard", True):
            body = pulumi.Output.all(
                api.region,
                api.api_id,
                api.stage_name,
                api.authorizer_function_name,
                api.websocket_function_name,
                api.sweeper_function_name,
                api.counter_function_name,
                store.table_name,
                namespace,
                *(alarm.arn for alarm in alarms.values()),
            ).apply(
                lambda values: dashboard_body(
                    DashboardSubject(
                        region=values[0],
                        api_id=values[1],
                        stage=values[2],
                        authorizer_function=values[3],
                        websocket_function=values[4],
                        sweeper_function=values[5],
                        counter_function=values[6],
                        table_name=values[7],
                        index_names=(USER_ID_INDEX, EXPIRY_INDEX),
                        authorizer_namespace=values[8],
                        alarm_arns=values[9:],
                    )
                )
            )
            self.dashboard_name = aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=physical_name(name, "dashboard", 255),
                dashboard_body=body,
                opts=child,
            ).dashboard_name
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "alarm_names": self.alarm_names,
                "dashboard_name": self.dashboard_name,
                "authorizer_metrics_namespace": self.authorizer_metrics_namespace,
            }
        )


def _watched_metric(
    kind: AlarmKind, rule: AlarmRule, api: SecuredWebSocketApi, store: ConnectionStore
) -> dict[str, Any]:
    """The MetricAlarm arguments naming what an alarm of `kind` watches, over `rule`'s period."""
    if kind.subject == "table":
        return {"metric_queries": _table_throttles(rule, store)}
    dimensions: dict[str, pulumi.Input[str]] = (
        {"ApiId": api.api_id, "Stage": api.stage_name}
        if kind.subject == "stage"
        else {"FunctionName": _function_names(api)[kind.subject]}
    )
    return {
        "namespace": kind.namespace,
        "metric_name": kind.metric,
        "dimensions": dimensions,
        "statistic": kind.statistic,
        "period": rule.period_seconds,
    }


def _function_names(api: SecuredWebSocketApi) -> dict[str, pulumi.Output[str]]:
    return {
        "authorizer": api.authorizer_function_name,
        "websocket": api.websocket_function_name,
        "sweeper": api.sweeper_function_name,
        "counter": api.counter_function_name,
    }


def _table_throttles(
    rule: AlarmRule, store: ConnectionStore
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """Throttles of the table and of each index are separate metrics: the alarm adds them up."""
    table: dict[str, pulumi.Input[str]] = {"TableName": store.table_name}
    watched = [
        ({**table, **index}, metric)
        for index in ({}, *({"GlobalSecondaryIndexName": i} for i in (USER_ID_INDEX, EXPIRY_INDEX)))
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
    ]
    queries = [
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=f"m{number}",
            return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace="AWS/DynamoDB",
                metric_name=metric,
                dimensions=dimensions,
                stat="Sum",
                period=rule.period_seconds,
            ),
        )
        for number, (dimensions, metric) in enumerate(watched, start=1)
    ]
    total = aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id="throttles",
        # DynamoDB publishes these only when they are not zero: each term is filled with 0
        # where it has no datapoint, so the sum exists (and the alarm clears) whenever any does.
        expression=" + ".join(f"FILL(m{number}, 0)" for number in range(1, len(watched) + 1)),
        label="Throttled requests (table and indexes)",
        return_data=True,
    )
    return [*queries, total]
