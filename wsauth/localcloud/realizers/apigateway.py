"""API Gateway: WebSocket APIs (`apigatewayv2`) for the gateway emulator, and the region's
API Gateway account settings (`apigateway`).

Each API, with its stage, routes, integrations and `$connect` authorizer, is assembled into an
`ApiSpec` once the program ran (`api_specs`): resources arrive in any order, and a route is
checked against what it names only when everything is there. Custom domain names and their API
mappings are recorded (the gateway serves `ws://HOST:PORT/{stage}`, no TLS, no host names):
each answers with the regional target AWS would give it, and `custom_domains` tells the runner
which API and stage each domain stands for.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    RealizeContext,
    Realized,
    RealizeError,
    ServiceRealizer,
    api_domain,
    auto_name,
    drop_none,
    random_id,
    record,
    stable_id,
)
from wsauth.localcloud.realizers.lambda_ import LambdaRealizer
from wsauth.localcloud.spec import ApiSpec, AuthorizerSpec, CustomDomainSpec, Limits, RouteSpec

__all__ = ["ApiGatewayRealizer"]

_ACCOUNT = "aws:apigateway/account:Account"
_DOMAIN_NAME = "aws:apigatewayv2/domainName:DomainName"
_API_MAPPING = "aws:apigatewayv2/apiMapping:ApiMapping"

# Bookkeeping of a deployment the local gateway does not need: its stage serves the routes as
# declared (auto-deploy), and responses are the functions' own. Each with how the start-up
# summary names it.
_RECORDED = {
    "aws:apigatewayv2/deployment:Deployment": ("API deployment", "API deployments"),
    "aws:apigatewayv2/routeResponse:RouteResponse": ("route response", "route responses"),
    "aws:apigatewayv2/integrationResponse:IntegrationResponse": (
        "integration response",
        "integration responses",
    ),
}


class ApiGatewayRealizer(ServiceRealizer):
    """WebSocket APIs and their parts; the region's `aws.apigateway.Account` settings."""

    service = "apigatewayv2"

    def __init__(self, context: RealizeContext) -> None:
        super().__init__(context)
        self.apis: dict[str, dict[str, Any]] = {}
        self._api_resource_names: dict[str, str] = {}  # api id → the program's resource name
        self.integrations: dict[str, dict[str, Any]] = {}
        self.authorizers: dict[str, dict[str, Any]] = {}
        self.routes: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []
        # The region's API Gateway account settings: unset, as on a new account, until the
        # program sets them.
        self.api_gateway_account: dict[str, Any] = {}
        self.domain_names: dict[str, dict[str, Any]] = {}  # domain name → outputs
        self.api_mappings: list[dict[str, Any]] = []

    def creators(self) -> Mapping[str, Creator]:
        creators: dict[str, Creator] = {
            "aws:apigatewayv2/api:Api": self._api,
            "aws:apigatewayv2/authorizer:Authorizer": self._authorizer,
            "aws:apigatewayv2/integration:Integration": self._integration,
            "aws:apigatewayv2/route:Route": self._route,
            "aws:apigatewayv2/stage:Stage": self._stage,
            _DOMAIN_NAME: self._domain_name,
            _API_MAPPING: self._api_mapping,
            _ACCOUNT: self._account,
        }
        for typ, (one, many) in _RECORDED.items():
            creators[typ] = self._recorder(typ, one, many)
        return creators

    def read(self, typ: str, name: str, resource_id: str) -> Realized | None:
        if typ == _ACCOUNT:
            return resource_id, dict(self.api_gateway_account)
        return None

    def _api(self, name: str, inputs: dict[str, Any]) -> Realized:
        if inputs.get("protocolType") != "WEBSOCKET":
            raise RealizeError(f"protocol {inputs.get('protocolType')!r}: only WEBSOCKET APIs run")
        api_id = random_id()
        api_name = inputs.get("name") or auto_name(name)
        self.apis[api_id] = {**inputs, "name": api_name}
        self._api_resource_names[api_id] = name
        return api_id, {
            **inputs,
            "id": api_id,
            "name": api_name,
            "apiEndpoint": f"wss://{api_domain(api_id, self.region)}",
            "arn": f"arn:aws:apigateway:{self.region}::/apis/{api_id}",
            "executionArn": f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}",
        }

    def _authorizer(self, name: str, inputs: dict[str, Any]) -> Realized:
        authorizer_id = random_id(6)
        self.authorizers[authorizer_id] = {**inputs, "name": inputs.get("name") or name}
        return authorizer_id, {**inputs, "id": authorizer_id}

    def _integration(self, name: str, inputs: dict[str, Any]) -> Realized:
        if inputs.get("integrationType") != "AWS_PROXY":
            raise RealizeError(
                f"integration type {inputs.get('integrationType')!r}: only AWS_PROXY runs locally"
            )
        integration_id = random_id(7)
        self.integrations[integration_id] = inputs
        return integration_id, {**inputs, "id": integration_id}

    def _route(self, name: str, inputs: dict[str, Any]) -> Realized:
        route_id = random_id(7)
        self.routes.append(inputs)
        return route_id, {**inputs, "id": route_id}

    def _stage(self, name: str, inputs: dict[str, Any]) -> Realized:
        stage_name = inputs.get("name") or name
        api_id = inputs["apiId"]
        self.stages.append({**inputs, "name": stage_name})
        execution_arn = f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}/{stage_name}"
        return stage_name, {
            **inputs,
            "id": stage_name,
            "name": stage_name,
            "arn": f"arn:aws:apigateway:{self.region}::/apis/{api_id}/stages/{stage_name}",
            "executionArn": execution_arn,
            "invokeUrl": f"wss://{api_domain(api_id, self.region)}/{stage_name}",
        }

    def _account(self, name: str, inputs: dict[str, Any]) -> Realized:
        self.api_gateway_account = drop_none({"cloudwatchRoleArn": inputs.get("cloudwatchRoleArn")})
        self.note_recorded(_ACCOUNT, "API Gateway account", "API Gateway accounts")
        return ACCOUNT_ID, {**inputs, "id": ACCOUNT_ID}

    def _recorder(self, typ: str, one: str, many: str) -> Creator:
        def create(name: str, inputs: dict[str, Any]) -> Realized:
            outputs = record(name, inputs)
            self.note_recorded(typ, one, many)
            return outputs["id"], outputs

        return create

    def _domain_name(self, name: str, inputs: dict[str, Any]) -> Realized:
        domain = str(inputs.get("domainName") or name)
        # What AWS answers: the regional name a DNS alias of the domain points at, in API
        # Gateway's hosted zone of the region.
        target = {
            "targetDomainName": api_domain(f"d-{stable_id(_DOMAIN_NAME + domain)}", self.region),
            "hostedZoneId": "Z" + stable_id(f"apigateway/{self.region}", 13, _UPPER_ID),
        }
        configuration = inputs.get("domainNameConfiguration") or {}
        if isinstance(configuration, list):  # older providers: a list of one
            answered: Any = [{**_DOMAIN_DEFAULTS, **each, **target} for each in configuration]
        else:
            answered = {**_DOMAIN_DEFAULTS, **configuration, **target}
        outputs = {
            **inputs,
            "id": domain,
            "domainName": domain,
            "arn": f"arn:aws:apigateway:{self.region}::/domainnames/{domain}",
            "apiMappingSelectionExpression": "$request.basepath",
            "domainNameConfiguration": answered,
        }
        self.domain_names[domain] = outputs
        self.note_recorded(_DOMAIN_NAME, "custom domain", "custom domains", detail=domain)
        return domain, outputs

    def _api_mapping(self, name: str, inputs: dict[str, Any]) -> Realized:
        mapping_id = stable_id(_API_MAPPING + name, 6)
        self.api_mappings.append(inputs)
        self.note_recorded(_API_MAPPING, "API mapping", "API mappings")
        return mapping_id, {**inputs, "id": mapping_id}

    # --- after the program ran --------------------------------------------------------------

    def custom_domains(self) -> list[CustomDomainSpec]:
        """Each API mapping of a custom domain to one of the program's APIs, by domain and key
        (a mapping naming an API or domain the program does not declare is left out)."""
        found = []
        for mapping in self.api_mappings:
            domain = str(mapping.get("domainName") or "")
            api_id = str(mapping.get("apiId") or "")
            if domain not in self.domain_names or api_id not in self.apis:
                continue
            found.append(
                CustomDomainSpec(
                    domain_name=domain,
                    api_id=api_id,
                    stage=str(mapping.get("stage") or ""),
                    mapping_key=str(mapping.get("apiMappingKey") or ""),
                )
            )
        return sorted(found, key=lambda spec: (spec.domain_name, spec.mapping_key))

    def api_specs(self, limits: Limits, lambdas: LambdaRealizer) -> list[ApiSpec]:
        """Assemble each WebSocket API the program declares for a gateway of its own.

        Ordered by the APIs' resource names: resources register from a thread pool, so
        declaration order is not stable, and each API's port follows from its place.

        Raises:
            RealizeError: No API, an API without exactly one stage, a route without a Lambda
                integration, an authorizer API Gateway would not run.
        """
        if not self.apis:
            raise RealizeError("the program declares no WebSocket API: nothing to serve")
        order = sorted(self.apis, key=lambda api_id: self._api_resource_names[api_id])
        return [self._api_spec(api_id, limits, lambdas) for api_id in order]

    def _api_spec(self, api_id: str, limits: Limits, lambdas: LambdaRealizer) -> ApiSpec:
        api = self.apis[api_id]
        stages = [stage for stage in self.stages if stage["apiId"] == api_id]
        if len(stages) != 1:
            raise RealizeError(f"API {api['name']} has {len(stages)} stages; expected one")
        routes: dict[str, RouteSpec] = {}
        connect_authorizer: AuthorizerSpec | None = None
        authorizer_id: str | None = None
        for route in self.routes:
            if route.get("apiId") != api_id:
                continue
            key = route["routeKey"]
            target = route.get("target") or ""
            if not target.startswith("integrations/"):
                raise RealizeError(f"route {key!r} has no integration target")
            integration = self.integrations.get(target.removeprefix("integrations/"))
            if integration is None:
                raise RealizeError(f"route {key!r} targets an unknown integration {target!r}")
            routes[key] = RouteSpec(key, _function_for_uri(integration["integrationUri"], lambdas))
            if route.get("authorizationType") == "CUSTOM":
                if key != "$connect":
                    raise RealizeError(f"route {key!r}: API Gateway allows authorizers on $connect")
                authorizer_id = route.get("authorizerId", "")
                authorizer = self.authorizers.get(authorizer_id)
                if authorizer is None:
                    raise RealizeError("$connect names an unknown authorizer")
                if authorizer.get("authorizerType") != "REQUEST":
                    raise RealizeError("only REQUEST authorizers run on WebSocket APIs")
                connect_authorizer = AuthorizerSpec(
                    name=authorizer["name"],
                    function_name=_function_for_uri(authorizer["authorizerUri"], lambdas),
                    identity_sources=tuple(authorizer.get("identitySources") or ()),
                )
        return ApiSpec(
            api_id=api_id,
            name=api["name"],
            stage=stages[0]["name"],
            route_selection_expression=api.get("routeSelectionExpression")
            or "$request.body.action",
            routes=routes,
            connect_authorizer=connect_authorizer,
            limits=limits,
            execution_arn=f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}",
            authorizer_id=authorizer_id,
        )


_UPPER_ID = string.ascii_uppercase + string.digits
_DOMAIN_DEFAULTS = {"endpointType": "REGIONAL", "securityPolicy": "TLS_1_2"}


def _function_for_uri(uri: str, lambdas: LambdaRealizer) -> str:
    # An invoke ARN: arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations
    arn = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
    name = lambdas.function_for_arn(arn)
    if name is None:
        raise RealizeError(f"integration URI {uri!r} names no function of this program")
    return name
