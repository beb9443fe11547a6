#!/usr/bin/env python3
"""Generates infra/template.yaml's repetitive parts from the single sources:
shared/app/src/http/routes.rs (HTTP routes), events/rules.json (EventBridge
rules) and shared/store/src/outbox/codec.rs (the outbox item's pending
attribute and item type, which the stream filter names; the pending index
itself is the local stack's stream emulation and is not on AWS). Run it after changing any; tests/drift.rs fails when the template and
those sources disagree.  Usage: python3 infra/scripts/gen-template.py"""
import json, pathlib, re

root = pathlib.Path(__file__).resolve().parents[2]
routes_rs = (root / "shared/app/src/http/routes.rs").read_text()
routes = [dict(method=m, path=p, function=f, authorized=a == "true") for m, p, f, a in re.findall(
    r'Route \{ method: "(\w+)", path: "([^"]+)", function: "([\w-]+)", authorized: (true|false) \}', routes_rs)]
rules = json.loads((root / "events/rules.json").read_text())
codec_rs = (root / "shared/store/src/outbox/codec.rs").read_text()
def codec_const(name):
    found = re.search(r'pub const %s: &str = "([^"]+)";' % name, codec_rs)
    if not found:
        raise SystemExit(f"shared/store/src/outbox/codec.rs has no `pub const {name}: &str`")
    return found.group(1)
PENDING_SHARD, EVENT_TYPE = codec_const("PENDING_SHARD"), codec_const("TYPE")
# The stream filter: outbox items as written or republished (codec::stream_filter; the drift test compares).
STREAM_FILTER = json.dumps({"dynamodb": {"NewImage": {"type": {"S": [EVENT_TYPE]}, PENDING_SHARD: {"S": [{"exists": True}]}}}})

def camel(name):
    return "".join(p.capitalize() for p in name.split("-"))

def j(v):
    return json.dumps(v, ensure_ascii=False)

out = []
w = out.append
w("""AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: >-
  shop: orders and payments on Lambda, DynamoDB (single table + outbox stream),
  EventBridge (bus, archive, one rule per consumer) and SQS (one queue and DLQ
  per consumer). Routes and rules are generated from shared/app/src/http/routes.rs
  and events/rules.json by infra/scripts/gen-template.py; tests/drift.rs checks.

Parameters:
  Architecture:
    Type: String
    Default: arm64
    AllowedValues: [arm64, x86_64]
    Description: Lambda architecture; build for the same one (`ARCH=x86_64 sam build`, infra/Makefile). The emulator test deploys x86_64 binaries.
  JwtIssuer:
    Type: String
    Description: Issuer URL of the JWT authorizer (e.g. a Cognito user pool URL).
  JwtAudience:
    Type: String
    Description: Audience (client id) the JWT authorizer accepts.
  PgBaseUrl:
    Type: String
    Default: https://api.tosspayments.com
  PgSecretKeyParameter:
    Type: AWS::SSM::Parameter::Name
    Default: /shop/pg-secret-key
    AllowedPattern: "^/.+"
    Description: SSM SecureString holding the Toss secret key (read at cold start, never in plain text here).
  AdmissionSecretParameter:
    Type: AWS::SSM::Parameter::Name
    Default: /shop/admission-secret
    AllowedPattern: "^/.+"
    Description: SSM SecureString holding the key the waiting room's admission tokens are signed with (read at cold start by the functions that sign or check them).
  DataPlatformUrl:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /shop/data-platform-url
    Description: SSM String parameter holding the data platform's base URL (resolved at deploy time).
  LogRetentionDays:
    Type: Number
    Default: 30
    AllowedValues: [7, 14, 30, 60, 90, 180, 365]
  OrderTtlSecs:
    Type: Number
    Default: 900
  ReconcileAfterSecs:
    Type: Number
    Default: 300
  MetricsNamespace:
    Type: String
    Default: shop
    AllowedPattern: "^[A-Za-z0-9._/#:-]{1,255}$"
    Description: CloudWatch namespace of the functions' EMF metrics; give each stack in an account its own.
  ApiThrottleRate:
    Type: Number
    Default: 500
    Description: Requests per second the API accepts across all routes (steady state); more get 429.
  ApiThrottleBurst:
    Type: Number
    Default: 1000
    Description: Requests the API accepts in a burst above the rate.
  ApplicationLogLevel:
    Type: String
    Default: INFO
    AllowedValues: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]
    Description: Lambda's application log-level filter; the functions read it as AWS_LAMBDA_LOG_LEVEL and do not even format what it drops.
  SystemLogLevel:
    Type: String
    Default: INFO
    AllowedValues: [DEBUG, INFO, WARN]
    Description: Lambda's own platform log lines (start, runtimeDone and report, with duration and memory, are INFO).
  UserIndexProjection:
    Type: String
    Default: KEYS_ONLY
    AllowedValues: [KEYS_ONLY, ALL]
    Description: What the byUser index projects. The code reads only its keys; ALL is for stacks created before it was keys-only, since CloudFormation cannot change an index's projection in place (docs/deploy.md).

Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    # X-Ray: each invocation is a segment; the trace header reaches the
    # handler as the invocation span's xrayTraceId (the logs' xray_trace_id).
    Tracing: Active
    Architectures: [!Ref Architecture]
    # 256 MB: handlers are I/O bound; Rust cold starts are a few ms. More
    # memory only buys CPU the functions do not use.
    MemorySize: 256
    Timeout: 10
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        METRICS_NAMESPACE: !Ref MetricsNamespace

Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: dueShard, AttributeType: S}
        - {AttributeName: dueAt, AttributeType: N}
        - {AttributeName: userPk, AttributeType: S}
        - {AttributeName: userSk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: byDue
          KeySchema: [{AttributeName: dueShard, KeyType: HASH}, {AttributeName: dueAt, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
        - IndexName: byUser
          KeySchema: [{AttributeName: userPk, KeyType: HASH}, {AttributeName: userSk, KeyType: RANGE}]
          Projection: {ProjectionType: !Ref UserIndexProjection}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}

  # Seals shoppers' refund accounts (a paid virtual account's money goes
  # back by bank transfer): the functions draw AES-256 data keys under it
  # (GenerateDataKey) and compensation decrypts them, each bound to the
  # encryption context purpose=shop-refund-accounts (ADR 0030).
  RefundAccountKey:
    Type: AWS::KMS::Key
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      Description: Seals shoppers' refund accounts (data keys of AES-256-GCM envelopes)
      EnableKeyRotation: true
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          # The account's IAM policies decide who uses it: the functions'
          # roles get one action each, bound to the encryption context.
          - Sid: AccountIamPolicies
            Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            Action: "kms:*"
            Resource: "*"

  EventBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "${AWS::StackName}-events"

  EventArchive:
    Type: AWS::Events::Archive
    Properties:
      SourceArn: !GetAtt EventBus.Arn
      RetentionDays: 30
      EventPattern: {source: [{prefix: "shop."}]}

  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      # Every request in one JSON line (the correlation id is the client's
      # X-Correlation-Id, else API Gateway's request id).
      AccessLogSettings:
        DestinationArn: !GetAtt HttpApiAccessLogs.Arn
        Format: '{"requestId":"$context.requestId","correlationId":"$request.header.x-correlation-id","routeKey":"$context.routeKey","status":"$context.status","latencyMs":"$context.responseLatency","integrationLatencyMs":"$context.integrationLatency","integrationError":"$context.integrationErrorMessage","authorizerError":"$context.authorizer.error","ip":"$context.identity.sourceIp","userAgent":"$context.identity.userAgent","requestTime":"$context.requestTimeEpoch"}'
      # Below what one DynamoDB partition takes (ADR 0011): a burst beyond it
      # gets 429 at the edge instead of throttled writes.
      DefaultRouteSettings:
        ThrottlingRateLimit: !Ref ApiThrottleRate
        ThrottlingBurstLimit: !Ref ApiThrottleBurst
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref JwtIssuer
              audience: [!Ref JwtAudience]

  HttpApiAccessLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/apigateway/${AWS::StackName}-http-api"
      RetentionInDays: !Ref LogRetentionDays

  PublisherFailureQueue:
    Type: AWS::SQS::Queue
    Metadata:
      cfn-lint:
        config:
          # A failure destination is the end of the line: its records are
          # read by `shop republish`, never redriven to another queue.
          ignore_checks: [ES6000]
    Properties:
      MessageRetentionPeriod: 1209600
""")

def alarm(logical, description, namespace, metric, dimension, statistic="Sum", period=60, evaluations=1, threshold=0):
    """A CloudWatch alarm on one metric with one dimension (`name: value` YAML)."""
    return f"""  {logical}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: {description}
      Namespace: {namespace}
      MetricName: {metric}
      Dimensions: [{{{dimension}}}]
      Statistic: {statistic}
      Period: {period}
      EvaluationPeriods: {evaluations}
      Threshold: {threshold}
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
"""

table_arns = """[!GetAtt Table.Arn, !Sub "${Table.Arn}/index/*"]"""

# The functions that call the PG (routes.rs PG_FUNCTIONS); only they get its
# URL, the secret's parameter name and ssm:GetParameter on that one
# parameter. (The default aws/ssm KMS key needs no kms:Decrypt grant; a
# customer key would.)
PG_FUNCTIONS = set(re.findall(r'"([\w-]+)"', re.search(r"PG_FUNCTIONS: &\[&str\] = &\[([^\]]*)\]", routes_rs).group(1)))
assert PG_FUNCTIONS, "PG_FUNCTIONS not found in routes.rs"

# The functions that sign or check admission tokens (routes.rs
# ADMISSION_FUNCTIONS): only they get the admission secret's parameter name
# and ssm:GetParameter on that one parameter.
ADMISSION_FUNCTIONS = set(re.findall(r'"([\w-]+)"', re.search(r"ADMISSION_FUNCTIONS: &\[&str\] = &\[([^\]]*)\]", routes_rs).group(1)))
assert ADMISSION_FUNCTIONS, "ADMISSION_FUNCTIONS not found in routes.rs"

# The functions that seal refund accounts and the one that opens them
# (routes.rs SEALING_FUNCTIONS / OPENING_FUNCTIONS): only they get the KMS
# key's id, and only the one action each needs on it, bound to the data
# keys' encryption context.
def rust_list(name):
    found = set(re.findall(r'"([\w-]+)"', re.search(name + r": &\[&str\] = &\[([^\]]*)\]", routes_rs).group(1)))
    assert found, f"{name} not found in routes.rs"
    return found

KMS_ACTIONS = {**{f: "kms:GenerateDataKey" for f in rust_list("SEALING_FUNCTIONS")},
               **{f: "kms:Decrypt" for f in rust_list("OPENING_FUNCTIONS")}}

# The functions that push to the waiting room's WebSocket connections
# (routes.rs LIVE_FUNCTIONS): its endpoint, and ManageConnections on it.
LIVE_FUNCTIONS = set(re.findall(r'"([\w-]+)"', re.search(r"LIVE_FUNCTIONS: &\[&str\] = &\[([^\]]*)\]", routes_rs).group(1)))
assert LIVE_FUNCTIONS, "LIVE_FUNCTIONS not found in routes.rs"
LIVE_ENDPOINT = '!Sub "https://${LiveApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/live"'

# Functions that only answer GET routes read the table and never write it.
READ_ONLY = {r["function"] for r in routes if r["method"] == "GET"} - {r["function"] for r in routes if r["method"] != "GET"}
READ_ACTIONS = "dynamodb:GetItem, dynamodb:Query, dynamodb:BatchGetItem"
WRITE_ACTIONS = "dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:ConditionCheckItem"

# Functions whose table access is narrower still (the emulator test runs them
# with IAM enforced). The publisher only clears an outbox item's `pending`.
TABLE_ACTIONS = {"stream-publisher": "dynamodb:UpdateItem"}

def policies(name, extra=""):
    ssm = """            - Effect: Allow
              Action: [ssm:GetParameter]
              Resource: !Sub "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PgSecretKeyParameter}"
""" if name in PG_FUNCTIONS else ""
    if name in LIVE_FUNCTIONS:
        ssm += """            - Effect: Allow
              Action: [execute-api:ManageConnections]
              Resource: !Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${LiveApi}/live/POST/@connections/*"
"""
    if name in ADMISSION_FUNCTIONS:
        ssm += """            - Effect: Allow
              Action: [ssm:GetParameter]
              Resource: !Sub "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${AdmissionSecretParameter}"
"""
    if name in KMS_ACTIONS:
        ssm += f"""            - Effect: Allow
              Action: [{KMS_ACTIONS[name]}]
              Resource: !GetAtt RefundAccountKey.Arn
              Condition:
                StringEquals:
                  kms:EncryptionContext:purpose: shop-refund-accounts
"""
    return f"""      Policies:
        - Statement:
            - Effect: Allow
              Action: [{TABLE_ACTIONS.get(name) or (READ_ACTIONS if name in READ_ONLY else READ_ACTIONS + ", " + WRITE_ACTIONS)}]
              Resource: {table_arns}
{ssm}{extra}"""

FUNCTIONS = []  # (binary, logical id), in template order: the dashboard lists them


def function(name, events, env="", extra_policy="", timeout=None):
    logical = camel(name) + "Function"
    FUNCTIONS.append((name, logical))
    t = f"\n      Timeout: {timeout}" if timeout else ""
    pg_env = """          PG_BASE_URL: !Ref PgBaseUrl
          PG_SECRET_KEY_PARAMETER: !Ref PgSecretKeyParameter
""" if name in PG_FUNCTIONS else ""
    if name in ADMISSION_FUNCTIONS:
        pg_env += """          ADMISSION_SECRET_PARAMETER: !Ref AdmissionSecretParameter
"""
    if name in LIVE_FUNCTIONS:
        pg_env += f"""          LIVE_ENDPOINT: {LIVE_ENDPOINT}
"""
    if name in KMS_ACTIONS:
        pg_env += """          REFUND_ACCOUNT_KEY_ID: !GetAtt RefundAccountKey.Arn
"""
    events_block = f"""      Events:
{events}
""" if events else ""
    w(f"""  {logical}:
    Type: AWS::Serverless::Function
    Metadata:
      # infra/Makefile: `cargo lambda build --profile lambda -p {name}`.
      BuildMethod: makefile
      ContextPath: .
      cfn-lint:
        config:
          # Its log group (with retention) is {logical}Logs, wired through
          # LoggingConfig.LogGroup, which the rule does not follow;
          # tests/drift.rs checks every function has one.
          ignore_checks: [WS1004]
    Properties:
      FunctionName: !Sub "${{AWS::StackName}}-{name}"
      CodeUri: ..{t}
      LoggingConfig:
        LogGroup: !Ref {logical}Logs
        # JSON: every application line is one object with the Powertools
        # keys (shop_app::obs::telemetry); Lambda filters it by `level`.
        LogFormat: JSON
        ApplicationLogLevel: !Ref ApplicationLogLevel
        SystemLogLevel: !Ref SystemLogLevel
      Environment:
        Variables:
{pg_env}          ORDER_TTL_SECS: !Ref OrderTtlSecs
          RECONCILE_AFTER_SECS: !Ref ReconcileAfterSecs{env}
{policies(name, extra_policy)}{events_block}
  {logical}Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${{AWS::StackName}}-{name}"
      RetentionInDays: !Ref LogRetentionDays

""")
    w(alarm(f"{logical}Errors", f"{name} reported errors", "AWS/Lambda", "Errors", f"Name: FunctionName, Value: !Ref {logical}"))

for r in routes:
    auth = "" if r["authorized"] else "\n            Auth: {Authorizer: NONE}"
    ev = f"""        Api:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: {r["method"]}
            Path: {r["path"]}{auth}"""
    function(r["function"], ev, timeout=15 if r["function"] in ("confirm-payment", "pg-webhook") else None)

# stream publisher
function("stream-publisher", """        Outbox:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 10
            MaximumRecordAgeInSeconds: 86400
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '""" + STREAM_FILTER + """'
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt PublisherFailureQueue.Arn""",
    env="\n          EVENT_BUS_NAME: !Ref EventBus",
    extra_policy="""            - Effect: Allow
              Action: [events:PutEvents]
              Resource: !GetAtt EventBus.Arn
              Condition:
                StringEquals: {"events:source": "shop.orders"}
            - Effect: Allow
              Action: [sqs:SendMessage]
              Resource: !GetAtt PublisherFailureQueue.Arn
""", timeout=60)

for rule in rules["rules"]:
    c = rule["consumer"]
    q = camel(c) + "Queue"
    env = "\n          DATA_PLATFORM_URL: !Ref DataPlatformUrl" if c == "analytics" else ""
    function(c, f"""        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt {q}.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {{MaximumConcurrency: 5}}""", env=env, timeout=30)
    w(f"""  {q}:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt {q}Dlq.Arn
        maxReceiveCount: 5

  {q}Dlq:
    Type: AWS::SQS::Queue
    Metadata:
      cfn-lint:
        config:
          # A DLQ has no DLQ of its own: `shop dlq redrive` moves its
          # messages back to the source queue.
          ignore_checks: [ES6000]
    Properties:
      MessageRetentionPeriod: 1209600

  {q}Policy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref {q}, !Ref {q}Dlq]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {{Service: events.amazonaws.com}}
            Action: sqs:SendMessage
            Resource: [!GetAtt {q}.Arn, !GetAtt {q}Dlq.Arn]
            Condition:
              ArnEquals: {{"aws:SourceArn": !GetAtt {camel(c)}Rule.Arn}}

  {camel(c)}Rule:
    Type: AWS::Events::Rule
    Properties:
      Description: {j(rule["description"])}
      EventBusName: !Ref EventBus
      EventPattern: {j(rule["pattern"])}
      Targets:
        - Id: {c}-queue
          Arn: !GetAtt {q}.Arn
          DeadLetterConfig: {{Arn: !GetAtt {q}Dlq.Arn}}
          RetryPolicy: {{MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400}}
""")
    w(alarm(f"{q}DlqDepth", f"messages in the {c} DLQ", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            f"Name: QueueName, Value: !GetAtt {q}Dlq.QueueName", statistic="Maximum"))

for name, rate in [("expire-orders", "rate(1 minute)"), ("reconcile-payments", "rate(1 minute)"),
                   # The waiting room's admitter: each run steps every live
                   # sale once a second for 55 s (events::schedules::ADMIT_RUN)
                   # and returns at once when none is live.
                   ("admit-sales", "rate(1 minute)")]:
    function(name, f"""        Schedule:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: {rate}""", timeout=60)

# The waiting room's WebSocket API (live positions, docs/waiting-room.md):
# `$connect` behind the REQUEST authorizer over the live token offered in
# Sec-WebSocket-Protocol, the three routes on the `live` function, a
# stage with auto-deploy whose access log names no header.
function("live-authorizer", "", timeout=10)
function("live", "", timeout=10)
lambda_uri = 'arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${%s.Arn}/invocations'
w(f"""  LiveApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: !Sub "${{AWS::StackName}}-live"
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"

  LiveAuthorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref LiveApi
      Name: live-token
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub "{lambda_uri % 'LiveAuthorizerFunction'}"
      IdentitySource: [route.request.header.Sec-WebSocket-Protocol]

  LiveIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref LiveApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "{lambda_uri % 'LiveFunction'}"

  LiveConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref LiveApi
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref LiveAuthorizer
      Target: !Sub "integrations/${{LiveIntegration}}"

  LiveDisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref LiveApi
      RouteKey: $disconnect
      Target: !Sub "integrations/${{LiveIntegration}}"

  LiveDefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref LiveApi
      RouteKey: $default
      Target: !Sub "integrations/${{LiveIntegration}}"

  LiveStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref LiveApi
      StageName: live
      AutoDeploy: true
      # Context variables only: the handshake's subprotocols (the live
      # token) are in none of them.
      AccessLogSettings:
        DestinationArn: !GetAtt LiveAccessLogs.Arn
        Format: '{{"requestId":"$context.requestId","connectionId":"$context.connectionId","eventType":"$context.eventType","routeKey":"$context.routeKey","status":"$context.status","authorizerError":"$context.authorizer.error","integrationError":"$context.integrationErrorMessage","ip":"$context.identity.sourceIp","requestTime":"$context.requestTimeEpoch"}}'
      DefaultRouteSettings:
        ThrottlingRateLimit: 2000
        ThrottlingBurstLimit: 5000

  LiveAccessLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/apigateway/${{AWS::StackName}}-live"
      RetentionInDays: !Ref LogRetentionDays

  LiveInvokePermission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref LiveFunction
      Principal: apigateway.amazonaws.com
      SourceArn: !Sub "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{LiveApi}}/*"

  LiveAuthorizerInvokePermission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref LiveAuthorizerFunction
      Principal: apigateway.amazonaws.com
      SourceArn: !Sub "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{LiveApi}}/*"

""")

w(alarm("PublisherFailures", "outbox records the publisher gave up on (their metadata is in PublisherFailureQueue; recover with shop republish)",
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Name: QueueName, Value: !GetAtt PublisherFailureQueue.QueueName",
        statistic="Maximum"))
w(alarm("StreamIteratorAge", "the outbox stream is falling behind", "AWS/Lambda", "IteratorAge",
        "Name: FunctionName, Value: !Ref StreamPublisherFunction", statistic="Maximum", evaluations=5, threshold=300000))
w(alarm("PaymentsUnknown", "payments the reconciler still cannot resolve (EMF metric PaymentsStillUnknown)", "!Ref MetricsNamespace",
        "PaymentsStillUnknown", "Name: service, Value: reconcile-payments", period=300, evaluations=2))
w(alarm("OutboxAge", "events wait more than a minute between their commit and EventBridge (EMF metric OutboxAge)", "!Ref MetricsNamespace",
        "OutboxAge", "Name: service, Value: stream-publisher", statistic="Maximum", evaluations=5, threshold=60000))


def dashboard():
    """The operator's dashboard: saga throughput, errors, DLQ depth, outbox
    age, PG and request latency. Metric names are the ones shop_app emits
    (obs::metrics, events::publisher)."""
    ns = "${MetricsNamespace}"

    def emf(metric, service, stat="Sum", label=None):
        return [ns, metric, "service", service, {"stat": stat, "label": label or metric}]

    def widget(x, y, title, metrics, stat="Sum", width=12, height=6):
        return {"type": "metric", "x": x, "y": y, "width": width, "height": height,
                "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 60,
                               "view": "timeSeries", "metrics": metrics}}

    consumers = [r["consumer"] for r in rules["rules"]]
    api = [r["function"] for r in routes]
    pg = sorted(PG_FUNCTIONS)
    widgets = [
        widget(0, 0, "Saga throughput (orders per minute)",
               [emf(m, "stream-publisher") for m in ("OrdersPlaced", "OrdersPaid", "OrdersExpired", "OrdersCancelled", "OrdersRefunded")]),
        widget(12, 0, "Function errors",
               [["AWS/Lambda", "Errors", "FunctionName", "${%s}" % logical, {"label": name}] for name, logical in FUNCTIONS]),
        widget(0, 6, "DLQ depth",
               [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${%sQueueDlq.QueueName}" % camel(c), {"label": c}]
                for c in consumers]
               + [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${PublisherFailureQueue.QueueName}",
                   {"label": "publisher failures"}]], stat="Maximum"),
        widget(12, 6, "Outbox: commit to EventBridge (ms), stream iterator age (ms)",
               [emf("OutboxAge", "stream-publisher", "Maximum", "oldest event published"),
                emf("OutboxAge", "stream-publisher", "p99", "p99"),
                ["AWS/Lambda", "IteratorAge", "FunctionName", "${StreamPublisherFunction}", {"stat": "Maximum", "label": "stream iterator age"}]],
               stat="Maximum"),
        widget(0, 12, "PG latency (ms)",
               [emf("PgLatency", f, "p50", f"{f} p50") for f in pg] + [emf("PgLatency", f, "p99", f"{f} p99") for f in pg]),
        widget(12, 12, "API latency, p99 (ms)",
               [emf("RequestLatency", f, "p99", f) for f in sorted(set(api))]),
        widget(0, 18, "Payments in doubt, compensations",
               [emf("PaymentsUnknown", "confirm-payment"), emf("PaymentsStillUnknown", "reconcile-payments"),
                emf("Refunds", "compensation"), emf("PublishFailures", "stream-publisher")]),
        widget(12, 18, "Cold starts",
               [emf("ColdStart", name, "Sum", name) for name, _ in FUNCTIONS]),
        widget(0, 24, "Waiting room: admissions, freed slots and positions pushed per minute",
               [emf("Admitted", "admit-sales"), emf("SlotsFreed", "waiting-room"),
                emf("PositionsPushed", "admit-sales")]),
    ]
    body = json.dumps({"widgets": widgets}, separators=(",", ":"))
    return f"""  Dashboard:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardName: !Sub "${{AWS::StackName}}-saga"
      DashboardBody: !Sub '{body}'
"""


w(dashboard())
w("""Outputs:
  ApiUrl:
    Value: !Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
  # The waiting room's live positions (docs/waiting-room.md).
  LiveUrl:
    Value: !Sub "wss://${LiveApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/live"
  TableName:
    Value: !Ref Table
  EventBusName:
    Value: !Ref EventBus
  DashboardUrl:
    Value: !Sub "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}#dashboards:name=${AWS::StackName}-saga"
  # What `shop … --stack NAME` resolves (infra/local/src/deployed/mod.rs).
  EventBusArn:
    Value: !GetAtt EventBus.Arn
  ArchiveArn:
    Value: !GetAtt EventArchive.Arn
  TableStreamArn:
    Value: !GetAtt Table.StreamArn
  PublisherFailureQueueUrl:
    Value: !Ref PublisherFailureQueue
""" + "".join(f"""  {camel(c)}QueueUrl:
    Value: !Ref {camel(c)}Queue
  {camel(c)}DlqUrl:
    Value: !Ref {camel(c)}QueueDlq
  {camel(c)}RuleArn:
    Value: !GetAtt {camel(c)}Rule.Arn
""" for c in [r["consumer"] for r in rules["rules"]]))
(root / "infra/template.yaml").write_text("\n".join(out))
print(f"infra/template.yaml: {len(routes)} routes, {len(rules['rules'])} rules")
