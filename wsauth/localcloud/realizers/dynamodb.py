"""DynamoDB tables (keys, global secondary indexes, TTL, stream), created in the embedded moto
server. A table's stream is read by the event source mappings on it (`streams.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    Creator,
    Realized,
    RealizeError,
    ServiceRealizer,
    auto_name,
)

__all__ = ["DynamoDbRealizer"]

_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


class DynamoDbRealizer(ServiceRealizer):
    """`aws.dynamodb.Table`, with its billing mode, indexes, TTL and stream."""

    service = "dynamodb"

    def creators(self) -> Mapping[str, Creator]:
        return {"aws:dynamodb/table:Table": self._table}

    def _table(self, name: str, inputs: dict[str, Any]) -> Realized:
        table_name = inputs.get("name") or auto_name(name)
        billing = inputs.get("billingMode") or "PROVISIONED"
        provisioned = billing == "PROVISIONED"
        key_schema = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
        if inputs.get("rangeKey"):
            key_schema.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
        request: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": key_schema,
            "AttributeDefinitions": [
                {"AttributeName": item["name"], "AttributeType": item["type"]}
                for item in inputs.get("attributes") or []
            ],
            "BillingMode": billing,
        }
        if provisioned:
            request["ProvisionedThroughput"] = _throughput(inputs)
        indexes = []
        for index in inputs.get("globalSecondaryIndexes") or []:
            schema = [
                {"AttributeName": key["attributeName"], "KeyType": key["keyType"]}
                for key in index.get("keySchemas") or []
            ] or [{"AttributeName": index["hashKey"], "KeyType": "HASH"}] + (
                [{"AttributeName": index["rangeKey"], "KeyType": "RANGE"}]
                if index.get("rangeKey")
                else []
            )
            projection: dict[str, Any] = {"ProjectionType": index["projectionType"]}
            if index.get("nonKeyAttributes"):
                projection["NonKeyAttributes"] = index["nonKeyAttributes"]
            gsi: dict[str, Any] = {
                "IndexName": index["name"],
                "KeySchema": schema,
                "Projection": projection,
            }
            if provisioned:
                gsi["ProvisionedThroughput"] = _throughput(index)
            indexes.append(gsi)
        if indexes:
            request["GlobalSecondaryIndexes"] = indexes
        stream_enabled = bool(inputs.get("streamEnabled"))
        view_type = inputs.get("streamViewType") or None
        if stream_enabled:
            if view_type not in _VIEW_TYPES:
                raise RealizeError(
                    f"stream_view_type {view_type!r}: a stream needs one of "
                    f"{', '.join(_VIEW_TYPES)} (stream_view_type is required when "
                    "stream_enabled = true)"
                )
            # Only with the stream on: moto would turn a stream on for a view type alone.
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        if inputs.get("deletionProtectionEnabled") is not None:
            request["DeletionProtectionEnabled"] = inputs["deletionProtectionEnabled"]
        dynamodb = self.context.client("dynamodb")
        table = dynamodb.create_table(**request)["TableDescription"]
        ttl = inputs.get("ttl")
        if ttl and ttl.get("enabled"):
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
        return table_name, {
            **inputs,
            "id": table_name,
            "name": table_name,
            "arn": table["TableArn"],
            "billingMode": billing,
            "streamEnabled": stream_enabled,
            "streamViewType": view_type if stream_enabled else "",
            # `arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{label}`; "" without one.
            "streamArn": table.get("LatestStreamArn", ""),
            "streamLabel": table.get("LatestStreamLabel", ""),
        }


def _throughput(inputs: Mapping[str, Any]) -> dict[str, int]:
    return {
        "ReadCapacityUnits": int(inputs.get("readCapacity") or 1),
        "WriteCapacityUnits": int(inputs.get("writeCapacity") or 1),
    }
