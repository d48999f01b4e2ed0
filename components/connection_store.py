"""ConnectionStore: the DynamoDB table pairing Cognito users with their WebSocket connections."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_aws as aws

__all__ = ["EXPIRY_INDEX", "USER_ID_INDEX", "ConnectionStore", "ConnectionStoreArgs"]

USER_ID_INDEX = "userIdIndex"
"""Name of the index on `userId` (a contract with the handlers and other services)."""
EXPIRY_INDEX = "expiryIndex"
"""Name of the index on `expiryBucket` and `expiresAt`, where the sweeper finds expired sessions."""


class ConnectionStoreArgs(TypedDict, total=False):
    """Arguments of `ConnectionStore`: plain values, validated before anything is created."""

    deletion_protection: bool
    """Whether DynamoDB refuses to delete the table (default False); turn on for production."""


class ConnectionStore(pulumi.ComponentResource):
    """The connection table: `connectionId` key, `userIdIndex` on `userId`, `expiryIndex` on
    `expiryBucket` and `expiresAt`, TTL on `removedAt`.

    On-demand billing (traffic follows connects and disconnects, which no capacity plan
    predicts), point-in-time recovery, encryption at rest with the AWS managed key, and deletion
    protection behind a switch.
    """

    table_name: pulumi.Output[str]
    """The table's name."""
    table_arn: pulumi.Output[str]
    """The table's ARN."""
    user_id_index_name: pulumi.Output[str]
    """`userIdIndex`: query it by `userId` to find a user's connections."""
    user_id_index_arn: pulumi.Output[str]
    """The index's ARN (`{table_arn}/index/userIdIndex`), for IAM policies."""
    expiry_index_arn: pulumi.Output[str]
    """The ARN of `expiryIndex` (`{table_arn}/index/expiryIndex`), for the sweeper's policy."""
    stream_arn: pulumi.Output[str]
    """The table's stream (old images), from which the live connection count is kept."""

    def __init__(
        self,
        name: str,
        args: ConnectionStoreArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = args or {}
        deletion_protection = bool(args.get("deletion_protection", False))

        super().__init__("wsauth:index:ConnectionStore", name, None, opts)

        table = aws.dynamodb.Table(
            f"{name}-table",
            billing_mode="PAY_PER_REQUEST",
            hash_key="connectionId",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name="connectionId", type="S"),
                aws.dynamodb.TableAttributeArgs(name="userId", type="S"),
                aws.dynamodb.TableAttributeArgs(name="expiryBucket", type="N"),
                aws.dynamodb.TableAttributeArgs(name="expiresAt", type="N"),
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=USER_ID_INDEX,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name="userId", key_type="HASH"
                        )
                    ],
                    # Items are a handful of small attributes, so ALL costs about what KEYS_ONLY
                    # does, and readers can skip expired items (TTL deletes lazily, within days)
                    # by `removedAt` without a second read per connection.
                    projection_type="ALL",
                ),
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=EXPIRY_INDEX,
                    # One partition per 10 minutes of expiries, sorted by the second: the
                    # sweeper reads what has expired and nothing else. Items without an expiry
                    # (sessionExpiry off) are not in the index at all (a sparse index).
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name="expiryBucket", key_type="HASH"
                        ),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name="expiresAt", key_type="RANGE"
                        ),
                    ],
                    projection_type="KEYS_ONLY",
                ),
            ],
            # Items outlive their connection only if `$disconnect` never ran; TTL sweeps them.
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="removedAt", enabled=True),
            # Every item created or removed, by whatever path (the TTL's deletes included):
            # the live connection count follows it. A removal's old image tells the counter
            # when that connection began (one counted in before the stream, or not).
            stream_enabled=True,
            stream_view_type="OLD_IMAGE",
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            # enabled=True selects the AWS managed key (aws/dynamodb): key use shows in
            # CloudTrail, and the functions need no KMS permission of their own.
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=deletion_protection,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.table_name = table.name
        self.table_arn = table.arn
        self.user_id_index_name = pulumi.Output.from_input(USER_ID_INDEX)
        self.user_id_index_arn = table.arn.apply(lambda arn: f"{arn}/index/{USER_ID_INDEX}")
        self.expiry_index_arn = table.arn.apply(lambda arn: f"{arn}/index/{EXPIRY_INDEX}")
        self.stream_arn = table.stream_arn
        self.register_outputs(
            {
                "table_name": self.table_name,
                "table_arn": self.table_arn,
                "user_id_index_name": self.user_id_index_name,
                "user_id_index_arn": self.user_id_index_arn,
                "expiry_index_arn": self.expiry_index_arn,
                "stream_arn": self.stream_arn,
            }
        )
