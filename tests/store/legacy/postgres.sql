-- The schema and data of the last landing's store (commit 648f457, migrations 1-7), dumped
-- with pg_dump --inserts (schema names and session settings removed) from a schema written by
-- that commit's PostgresStore: see README.md.
--
-- PostgreSQL database dump
--

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

--
-- Name: legacy_fixture; Type: SCHEMA; Schema: -; Owner: -
--

--
-- Name: api_keys; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE api_keys (
    id text NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    key_prefix text NOT NULL,
    key_hash text NOT NULL,
    role_id text NOT NULL,
    expires_at timestamp with time zone,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: audit_events; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE audit_events (
    tenant_id text NOT NULL,
    seq bigint NOT NULL,
    id text NOT NULL,
    time_us bigint NOT NULL,
    actor_kind text NOT NULL,
    actor_id text,
    action text NOT NULL,
    proxy_mode text,
    credential text,
    credential_version bigint,
    method text,
    target_host text,
    target_path text,
    status bigint,
    latency_ms bigint,
    bytes bigint,
    client_ip text,
    outcome text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);

--
-- Name: audit_heads; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE audit_heads (
    tenant_id text NOT NULL,
    seq bigint NOT NULL,
    hash text NOT NULL
);

--
-- Name: audit_journals; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE audit_journals (
    journal text NOT NULL,
    indexed_to bigint NOT NULL
);

--
-- Name: credentials; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE credentials (
    id text NOT NULL,
    tenant_id text NOT NULL,
    alias text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    version bigint NOT NULL,
    inject text,
    policy text NOT NULL,
    description text,
    metadata text NOT NULL,
    wrapped_key bytea NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: keystile_migrations; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE keystile_migrations (
    version bigint NOT NULL,
    applied_at timestamp with time zone NOT NULL
);

--
-- Name: project_keys; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE project_keys (
    id text NOT NULL,
    project_id text NOT NULL,
    tenant_id text NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    valid_until timestamp with time zone
);

--
-- Name: project_secrets; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE project_secrets (
    id text NOT NULL,
    tenant_id text NOT NULL,
    project_id text NOT NULL,
    env text NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    wrapped_key bytea NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: projects; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE projects (
    id text NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: roles; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE roles (
    id text NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    description text,
    permissions text NOT NULL,
    credential_scopes text NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: routes; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE routes (
    id text NOT NULL,
    tenant_id text NOT NULL,
    name text NOT NULL,
    spec text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: signature_nonces; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE signature_nonces (
    project_id text NOT NULL,
    nonce text NOT NULL,
    expires_at bigint NOT NULL
);

--
-- Name: tenant_usage; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE tenant_usage (
    tenant_id text NOT NULL,
    period text NOT NULL,
    count bigint NOT NULL
);

--
-- Name: tenants; Type: TABLE; Schema: legacy_fixture; Owner: -
--

CREATE TABLE tenants (
    id text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    plan text DEFAULT '{}'::text NOT NULL
);

--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000201', '00000000-0000-4000-8000-000000000001', 'key 1', 'kst_0001', '0000000000000000000000000000000000000000000000000000000000000001', '00000000-0000-4000-8000-000000000101', '2024-02-29 12:00:00+00', '2023-11-14 22:13:20.000001+00', NULL, '2026-01-01 00:00:00.123456+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000202', '00000000-0000-4000-8000-000000000002', 'key 2', 'kst_0002', '0000000000000000000000000000000000000000000000000000000000000002', '00000000-0000-4000-8000-000000000102', NULL, NULL, NULL, '1969-12-31 23:59:59.999999+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000203', '00000000-0000-4000-8000-000000000001', 'key 3', 'kst_0003', '0000000000000000000000000000000000000000000000000000000000000003', '00000000-0000-4000-8000-000000000103', '1969-12-31 23:59:59.999999+00', NULL, NULL, '2023-11-14 22:13:20.123+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000204', '00000000-0000-4000-8000-000000000001', 'key 4', 'kst_0004', '0000000000000000000000000000000000000000000000000000000000000004', '00000000-0000-4000-8000-000000000104', NULL, '2026-01-01 00:00:00.123456+00', '2024-02-29 12:00:00+00', '1969-12-31 23:59:59.999999+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000205', '00000000-0000-4000-8000-000000000001', 'key 5', 'kst_0005', '0000000000000000000000000000000000000000000000000000000000000005', '00000000-0000-4000-8000-000000000105', '2026-01-01 00:00:00.123456+00', NULL, NULL, '2999-12-31 23:59:59.999999+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000206', '00000000-0000-4000-8000-000000000001', 'key 6', 'kst_0006', '0000000000000000000000000000000000000000000000000000000000000006', '00000000-0000-4000-8000-000000000106', NULL, NULL, NULL, '2026-01-01 00:00:00.123456+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000207', '00000000-0000-4000-8000-000000000001', 'key 7', 'kst_0007', '0000000000000000000000000000000000000000000000000000000000000007', '00000000-0000-4000-8000-000000000107', '2023-11-14 22:13:20.000001+00', '2023-11-14 22:13:20.123+00', NULL, '2024-02-29 12:00:00+00');
INSERT INTO api_keys VALUES ('00000000-0000-4000-8000-000000000208', '00000000-0000-4000-8000-000000000001', 'key 8', 'kst_0008', '0000000000000000000000000000000000000000000000000000000000000008', '00000000-0000-4000-8000-000000000108', NULL, NULL, NULL, '2023-11-14 22:13:20.000001+00');

--
-- Data for Name: audit_events; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO audit_events VALUES ('00000000-0000-4000-8000-000000000001', 1, '00000000-0000-4000-8000-000000000800', 1767225600123456, 'key', '00000000-0000-4000-8000-000000000201', 'proxy.request', 'path', 'github-1', 1, 'GET', 'api.example.com', '/v1/items/0?page=_', 200, 12, 345, '2001:db8::1', 'ok', '0000000000000000000000000000000000000000000000000000000000000000', '443026109a09ff326facc6f679921c68cfd2d32e6bb20e096b9986a6de2437f4');
INSERT INTO audit_events VALUES ('00000000-0000-4000-8000-000000000001', 2, '00000000-0000-4000-8000-000000000801', 1709208000000000, 'key', '00000000-0000-4000-8000-000000000201', 'proxy.request', 'route', 'github-1', 1, 'GET', 'api.example.com', '/v1/items/1?page=_', 200, 13, 345, '2001:db8::1', 'ok', '443026109a09ff326facc6f679921c68cfd2d32e6bb20e096b9986a6de2437f4', 'd4eb959aa9696f79241e69721f85c8df9c0e9bb1000b657fc3826629751fa816');
INSERT INTO audit_events VALUES ('00000000-0000-4000-8000-000000000001', 3, '00000000-0000-4000-8000-000000000802', 1700000000000001, 'key', '00000000-0000-4000-8000-000000000201', 'proxy.request', 'execute', 'github-1', 1, 'GET', 'api.example.com', '/v1/items/2?page=_', 200, 14, 345, '2001:db8::1', 'ok', 'd4eb959aa9696f79241e69721f85c8df9c0e9bb1000b657fc3826629751fa816', '8d7b4096b3ce8240fa6113a78375839fe6c2e6bff12b659b75f0d5192e3d4f6b');
INSERT INTO audit_events VALUES ('00000000-0000-4000-8000-000000000002', 1, '00000000-0000-4000-8000-000000000810', 1700000000123000, 'project', '00000000-0000-4000-8000-000000000500', 'secret.fetch', NULL, NULL, NULL, 'GET', NULL, '/v1/secrets?env=production', 403, NULL, NULL, '127.0.0.1', 'forbidden', '0000000000000000000000000000000000000000000000000000000000000000', '98e7ac5d2d42f2a1d7868574a88f3606654f1cbf15368cb393ecfde0b057eeb5');
INSERT INTO audit_events VALUES ('00000000-0000-4000-8000-000000000002', 2, '00000000-0000-4000-8000-000000000811', -1, 'key', '00000000-0000-4000-8000-000000000202', 'POST /v1/credentials', NULL, NULL, NULL, 'POST', NULL, '/v1/credentials', 201, 3, NULL, NULL, 'ok', '98e7ac5d2d42f2a1d7868574a88f3606654f1cbf15368cb393ecfde0b057eeb5', 'f8a20a144cf47b34add7d1beb39da5baaabca56bf7115b2f79ddcc773efdfd33');
INSERT INTO audit_events VALUES ('00000000-0000-0000-0000-000000000000', 1, '00000000-0000-4000-8000-000000000820', 32503679999999999, 'none', NULL, 'auth.failure', NULL, NULL, NULL, 'GET', NULL, '/v1/credentials', 401, NULL, NULL, '192.0.2.7', 'unauthorized', '0000000000000000000000000000000000000000000000000000000000000000', '3faec371e26b5f8f2deb6e562d6275df023a219956aca2661f6835ab60cdab1e');

--
-- Data for Name: audit_heads; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO audit_heads VALUES ('00000000-0000-4000-8000-000000000002', 2, 'f8a20a144cf47b34add7d1beb39da5baaabca56bf7115b2f79ddcc773efdfd33');
INSERT INTO audit_heads VALUES ('00000000-0000-0000-0000-000000000000', 1, '3faec371e26b5f8f2deb6e562d6275df023a219956aca2661f6835ab60cdab1e');
INSERT INTO audit_heads VALUES ('00000000-0000-4000-8000-000000000001', 3, '8d7b4096b3ce8240fa6113a78375839fe6c2e6bff12b659b75f0d5192e3d4f6b');

--
-- Data for Name: audit_journals; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO audit_journals VALUES ('0123456789abcdef0123456789abcdef-0000000001', 123);

--
-- Data for Name: credentials; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO credentials VALUES ('00000000-0000-4000-8000-000000000301', '00000000-0000-4000-8000-000000000001', 'github-1', 'api_key', 'active', 1, '{"header":"x-api-key","format":"Token {key}"}', '{"allowed_hosts":["api.example.com","*.example.org"],"allow_http":false,"allow_private_network":false}', 'credential 1', '{"n":1,"nested":{"ok":true},"team":"platform"}', '\x9d21bfd894f2a733b3290ab901bb086ffe04102d0ef66fb9d07dcf481ed0c4835ba8c22db271d66734b64f7d597d6ff5c9e4f9a2cc4dd186b56bff50', '\x1592064790ad9640d34d1f170e1974c61820f35a43467dc10004f962868bfe632de8f3a51fce587103ac4f37d010e86717eb3957', '2024-02-29 12:00:00+00', '2023-11-14 22:13:20.000001+00');
INSERT INTO credentials VALUES ('00000000-0000-4000-8000-000000000302', '00000000-0000-4000-8000-000000000001', 'github-2', 'api_key', 'frozen', 2, NULL, '{"allowed_hosts":["api.example.com","*.example.org"],"allow_http":false,"allow_private_network":false}', 'credential 2', '{"n":2,"nested":{"ok":true},"team":"platform"}', '\x891c12593812f3f4049871ecd4e37fcc95722125da1d94219afe9144b81a9fbf0ac8777345761e1fffb2deed0f7799862fd079bb03a7c1006e8e022f', '\x3903701dfcc2aa9b751b26e834763bf1b7f412d3d894fa74f667158e46d0e6ba4f2a0157addf3f054e0af056ae3901c61cfb57a4', '2023-11-14 22:13:20.000001+00', '2023-11-14 22:13:20.123+00');
INSERT INTO credentials VALUES ('00000000-0000-4000-8000-000000000303', '00000000-0000-4000-8000-000000000001', 'github-3', 'api_key', 'active', 1, NULL, '{"allowed_hosts":["api.example.com","*.example.org"],"allow_http":false,"allow_private_network":false}', 'credential 3', '{"n":3,"nested":{"ok":true},"team":"platform"}', '\x4ba8de01498a418bb8ecb284c393167c23d99c43d8ba2ac118a24bacfa44f084164ecc6611d764f01dbe8550fad46471a8eb3ba5bd3f324e91c5a6a6', '\xb8fa49de14ac029dfc12254d15d1e3b15121de2fc437adc0fe6aa2834b34a72f65e58397f6215ebc5b7fcf6825a9895832a6135a', '2023-11-14 22:13:20.123+00', '1969-12-31 23:59:59.999999+00');

--
-- Data for Name: keystile_migrations; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO keystile_migrations VALUES (1, '2026-12-02 17:34:25.736549+00');
INSERT INTO keystile_migrations VALUES (2, '2026-12-02 17:34:25.756564+00');
INSERT INTO keystile_migrations VALUES (3, '2026-12-02 17:34:25.758149+00');
INSERT INTO keystile_migrations VALUES (4, '2026-12-02 17:34:25.81963+00');
INSERT INTO keystile_migrations VALUES (5, '2026-12-02 17:34:25.844281+00');
INSERT INTO keystile_migrations VALUES (6, '2026-12-02 17:34:25.852022+00');
INSERT INTO keystile_migrations VALUES (7, '2026-12-02 17:34:25.86013+00');

--
-- Data for Name: project_keys; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO project_keys VALUES ('00000000-0000-4000-8000-000000000601', '00000000-0000-4000-8000-000000000500', '00000000-0000-4000-8000-000000000001', '\x0101010101010101010101010101010101010101010101010101010101010101', '2024-02-29 12:00:00+00', '2999-12-31 23:59:59.999999+00');
INSERT INTO project_keys VALUES ('00000000-0000-4000-8000-000000000602', '00000000-0000-4000-8000-000000000500', '00000000-0000-4000-8000-000000000001', '\x0202020202020202020202020202020202020202020202020202020202020202', '2023-11-14 22:13:20.000001+00', NULL);

--
-- Data for Name: project_secrets; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO project_secrets VALUES ('00000000-0000-4000-8000-000000000701', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000500', 'production', 'SECRET_1', 1, '\x402a06995c28b32c553d898bb95e85b365c984caff9e0894f78f5a564105f115b1f6210869684d947dfaf5aeb14c0fcc225018926d17408fd4bfe974', '\x88556fe2d343d6c05b1fddc0ca579b1a21dc7c5d191f597886015433b3d0b633e8bee36509a1019f5d1957f99bc6bb7d759e', '2024-02-29 12:00:00+00', '2024-02-29 12:00:00+00');
INSERT INTO project_secrets VALUES ('00000000-0000-4000-8000-000000000702', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000500', 'production', 'SECRET_2', 2, '\xf289f1b99cf8bd03b42179c34b52583ba82c67481275cc22964276c8e6ade24aedf16e136547acc26711b9d081844d6921eda0defeee2af3cc315ab9', '\x183c990302bd5dd76867085130709ef9f497cd7bd58d19eff593f12cfd498cfb6474b4f285cbe0a0105d8052ca4b9f21a614', '2023-11-14 22:13:20.000001+00', '2023-11-14 22:13:20.123+00');

--
-- Data for Name: projects; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO projects VALUES ('00000000-0000-4000-8000-000000000500', '00000000-0000-4000-8000-000000000001', 'billing', '2024-02-29 12:00:00+00');

--
-- Data for Name: roles; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000001', 'role 1', NULL, '["read","audit"]', '["github-*"]', '2026-01-01 00:00:00.123456+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000102', '00000000-0000-4000-8000-000000000002', 'role 2', 'role number 2', '["read","audit"]', '["github-*"]', '1969-12-31 23:59:59.999999+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000103', '00000000-0000-4000-8000-000000000001', 'role 3', NULL, '["read","audit"]', '["github-*"]', '2023-11-14 22:13:20.123+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000104', '00000000-0000-4000-8000-000000000001', 'role 4', 'role number 4', '["read","audit"]', '["github-*"]', '1969-12-31 23:59:59.999999+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000105', '00000000-0000-4000-8000-000000000001', 'role 5', NULL, '["read","audit"]', '["github-*"]', '2999-12-31 23:59:59.999999+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000106', '00000000-0000-4000-8000-000000000001', 'role 6', 'role number 6', '["read","audit"]', '["github-*"]', '2026-01-01 00:00:00.123456+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000107', '00000000-0000-4000-8000-000000000001', 'role 7', NULL, '["read","audit"]', '["github-*"]', '2024-02-29 12:00:00+00');
INSERT INTO roles VALUES ('00000000-0000-4000-8000-000000000108', '00000000-0000-4000-8000-000000000001', 'role 8', 'role number 8', '["read","audit"]', '["github-*"]', '2023-11-14 22:13:20.000001+00');

--
-- Data for Name: routes; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO routes VALUES ('00000000-0000-4000-8000-000000000400', '00000000-0000-4000-8000-000000000001', 'billing', '{"base_url":"https://api.example.com/v1/","credential":"github-1","allowed_methods":["GET","POST"],"follow_redirects":false,"timeout_ms":5000}', '2023-11-14 22:13:20.000001+00', '2023-11-14 22:13:20.123+00');

--
-- Data for Name: signature_nonces; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO signature_nonces VALUES ('00000000-0000-4000-8000-000000000500', 'nonce-1', 32503679999);

--
-- Data for Name: tenant_usage; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO tenant_usage VALUES ('00000000-0000-4000-8000-000000000001', '2026-05', 42);

--
-- Data for Name: tenants; Type: TABLE DATA; Schema: legacy_fixture; Owner: -
--

INSERT INTO tenants VALUES ('00000000-0000-4000-8000-000000000001', 'acme', 'active', '2026-01-01 00:00:00.123456+00', '{"disabled_surfaces":["mcp"],"operations_per_month":1000}');
INSERT INTO tenants VALUES ('00000000-0000-4000-8000-000000000002', 'globex', 'terminated', '1969-12-31 23:59:59.999999+00', '{}');

--
-- Name: api_keys api_keys_key_hash_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);

--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

--
-- Name: audit_events audit_events_id_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY audit_events
    ADD CONSTRAINT audit_events_id_key UNIQUE (id);

--
-- Name: audit_events audit_events_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, seq);

--
-- Name: audit_heads audit_heads_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY audit_heads
    ADD CONSTRAINT audit_heads_pkey PRIMARY KEY (tenant_id);

--
-- Name: audit_journals audit_journals_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY audit_journals
    ADD CONSTRAINT audit_journals_pkey PRIMARY KEY (journal);

--
-- Name: credentials credentials_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY credentials
    ADD CONSTRAINT credentials_pkey PRIMARY KEY (id);

--
-- Name: credentials credentials_tenant_id_alias_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY credentials
    ADD CONSTRAINT credentials_tenant_id_alias_key UNIQUE (tenant_id, alias);

--
-- Name: keystile_migrations keystile_migrations_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY keystile_migrations
    ADD CONSTRAINT keystile_migrations_pkey PRIMARY KEY (version);

--
-- Name: project_keys project_keys_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_keys
    ADD CONSTRAINT project_keys_pkey PRIMARY KEY (id);

--
-- Name: project_secrets project_secrets_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_secrets
    ADD CONSTRAINT project_secrets_pkey PRIMARY KEY (id);

--
-- Name: project_secrets project_secrets_project_id_env_name_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_secrets
    ADD CONSTRAINT project_secrets_project_id_env_name_key UNIQUE (project_id, env, name);

--
-- Name: projects projects_name_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY projects
    ADD CONSTRAINT projects_name_key UNIQUE (name);

--
-- Name: projects projects_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (id);

--
-- Name: roles roles_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (id);

--
-- Name: roles roles_tenant_id_name_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY roles
    ADD CONSTRAINT roles_tenant_id_name_key UNIQUE (tenant_id, name);

--
-- Name: routes routes_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY routes
    ADD CONSTRAINT routes_pkey PRIMARY KEY (id);

--
-- Name: routes routes_tenant_id_name_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY routes
    ADD CONSTRAINT routes_tenant_id_name_key UNIQUE (tenant_id, name);

--
-- Name: signature_nonces signature_nonces_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY signature_nonces
    ADD CONSTRAINT signature_nonces_pkey PRIMARY KEY (project_id, nonce);

--
-- Name: tenant_usage tenant_usage_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY tenant_usage
    ADD CONSTRAINT tenant_usage_pkey PRIMARY KEY (tenant_id, period);

--
-- Name: tenants tenants_name_key; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY tenants
    ADD CONSTRAINT tenants_name_key UNIQUE (name);

--
-- Name: tenants tenants_pkey; Type: CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

--
-- Name: api_keys_tenant; Type: INDEX; Schema: legacy_fixture; Owner: -
--

CREATE INDEX api_keys_tenant ON api_keys USING btree (tenant_id, created_at);

--
-- Name: audit_events_time; Type: INDEX; Schema: legacy_fixture; Owner: -
--

CREATE INDEX audit_events_time ON audit_events USING btree (tenant_id, time_us);

--
-- Name: project_keys_project; Type: INDEX; Schema: legacy_fixture; Owner: -
--

CREATE INDEX project_keys_project ON project_keys USING btree (project_id);

--
-- Name: signature_nonces_expiry; Type: INDEX; Schema: legacy_fixture; Owner: -
--

CREATE INDEX signature_nonces_expiry ON signature_nonces USING btree (expires_at);

--
-- Name: api_keys api_keys_role_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_role_id_fkey FOREIGN KEY (role_id) REFERENCES roles(id);

--
-- Name: api_keys api_keys_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: credentials credentials_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY credentials
    ADD CONSTRAINT credentials_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: project_keys project_keys_project_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_keys
    ADD CONSTRAINT project_keys_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE;

--
-- Name: project_keys project_keys_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_keys
    ADD CONSTRAINT project_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: project_secrets project_secrets_project_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_secrets
    ADD CONSTRAINT project_secrets_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE;

--
-- Name: project_secrets project_secrets_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY project_secrets
    ADD CONSTRAINT project_secrets_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: projects projects_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY projects
    ADD CONSTRAINT projects_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: roles roles_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY roles
    ADD CONSTRAINT roles_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: routes routes_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY routes
    ADD CONSTRAINT routes_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- Name: tenant_usage tenant_usage_tenant_id_fkey; Type: FK CONSTRAINT; Schema: legacy_fixture; Owner: -
--

ALTER TABLE ONLY tenant_usage
    ADD CONSTRAINT tenant_usage_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);

--
-- PostgreSQL database dump complete
--

