"""Outputs of a deployed stack and of the local cloud, as the clients read them."""

STACK_OUTPUTS = {
    "region": "eu-west-1",
    "userPoolId": "eu-west-1_AbCdEf123",
    "userPoolWebClientId": "4example0client0id0abcdefg",
    "webSocketEndpoint": "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    "managementEndpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    "connectionTableName": "connections-table-1a2b3c4",
}
LOCAL_OUTPUTS = {
    **STACK_OUTPUTS,
    "webSocketEndpoint": "ws://127.0.0.1:8080/prod",
    "managementEndpoint": "http://127.0.0.1:8080/prod",
    "awsEndpoint": "http://127.0.0.1:4566",
    "webPage": "http://127.0.0.1:8081/",
}
