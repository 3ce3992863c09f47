--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: clock; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.clock (
    one boolean DEFAULT true NOT NULL,
    last bigint NOT NULL,
    registry_gen bigint NOT NULL,
    CONSTRAINT clock_one_check CHECK (one)
);


--
-- Name: entries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.entries (
    view_id bigint NOT NULL,
    date_added bigint NOT NULL,
    vid bigint NOT NULL,
    stix_id text NOT NULL,
    type text NOT NULL,
    spec_version text NOT NULL,
    version_us bigint NOT NULL,
    is_first boolean NOT NULL,
    is_last boolean NOT NULL,
    provisional boolean DEFAULT false NOT NULL
);


--
-- Name: maintenance; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.maintenance (
    one boolean DEFAULT true NOT NULL,
    last_us bigint NOT NULL,
    CONSTRAINT maintenance_one_check CHECK (one)
);


--
-- Name: object_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.object_versions (
    vid bigint NOT NULL,
    stix_id text NOT NULL,
    type text NOT NULL,
    spec_version text NOT NULL,
    version_key bigint NOT NULL,
    version_us bigint NOT NULL,
    added_us bigint NOT NULL,
    sources text NOT NULL,
    is_latest boolean NOT NULL,
    raw text NOT NULL
);


--
-- Name: object_versions_vid_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.object_versions_vid_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: object_versions_vid_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.object_versions_vid_seq OWNED BY public.object_versions.vid;


--
-- Name: schema_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_version (
    version bigint NOT NULL
);


--
-- Name: status; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.status (
    id text NOT NULL,
    api_root text NOT NULL,
    created_us bigint NOT NULL,
    body text NOT NULL
);


--
-- Name: views; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.views (
    view_id bigint NOT NULL,
    collection text NOT NULL,
    kind text NOT NULL,
    query text,
    state text NOT NULL,
    replaces bigint,
    progress_vid bigint DEFAULT 0 NOT NULL,
    size bigint DEFAULT 0 NOT NULL,
    names text DEFAULT ''::text NOT NULL,
    created_us bigint NOT NULL,
    retired_us bigint,
    CONSTRAINT views_kind_check CHECK ((kind = ANY (ARRAY['stored'::text, 'query'::text]))),
    CONSTRAINT views_state_check CHECK ((state = ANY (ARRAY['active'::text, 'building'::text, 'retired'::text])))
);


--
-- Name: views_view_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.views_view_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: views_view_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.views_view_id_seq OWNED BY public.views.view_id;


--
-- Name: object_versions vid; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.object_versions ALTER COLUMN vid SET DEFAULT nextval('public.object_versions_vid_seq'::regclass);


--
-- Name: views view_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.views ALTER COLUMN view_id SET DEFAULT nextval('public.views_view_id_seq'::regclass);


--
-- Data for Name: clock; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.clock VALUES (true, 1796552525366897, 1);


--
-- Data for Name: entries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.entries VALUES (1, 1796552525351441, 1, 'indicator--0b7f0000-0000-4000-8000-00000000000a', 'indicator', '2.1', 1767225600000000, true, true, false);
INSERT INTO public.entries VALUES (1, 1796552525351655, 2, 'indicator--0b7f0000-0000-4000-8000-00000000000b', 'indicator', '2.1', 1767225600000000, true, true, false);
INSERT INTO public.entries VALUES (2, 1796552525366574, 1, 'indicator--0b7f0000-0000-4000-8000-00000000000a', 'indicator', '2.1', 1767225600000000, true, true, false);
INSERT INTO public.entries VALUES (2, 1796552525366735, 3, 'indicator--0b7f0000-0000-4000-8000-00000000000b', 'indicator', '2.1', 1769904000000000, true, true, false);
INSERT INTO public.entries VALUES (3, 1796552525351614, 1, 'indicator--0b7f0000-0000-4000-8000-00000000000a', 'indicator', '2.1', 1767225600000000, true, true, false);
INSERT INTO public.entries VALUES (3, 1796552525366897, 3, 'indicator--0b7f0000-0000-4000-8000-00000000000b', 'indicator', '2.1', 1769904000000000, true, true, false);


--
-- Data for Name: maintenance; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.maintenance VALUES (true, 0);


--
-- Data for Name: object_versions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.object_versions VALUES (1, 'indicator--0b7f0000-0000-4000-8000-00000000000a', 'indicator', '2.1', 1767225600000000, 1767225600000000, 1796552525351394, '0b7f0a6e-1111-4111-8111-111111111111
0b7f0a6e-2222-4222-8222-222222222222
', true, '{"type":"indicator","spec_version":"2.1","id":"indicator--0b7f0000-0000-4000-8000-00000000000a","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"X","pattern":"[ipv4-addr:value = ''198.51.100.10'']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}');
INSERT INTO public.object_versions VALUES (2, 'indicator--0b7f0000-0000-4000-8000-00000000000b', 'indicator', '2.1', 1767225600000000, 1767225600000000, 1796552525351647, '0b7f0a6e-1111-4111-8111-111111111111
', false, '{"type":"indicator","spec_version":"2.1","id":"indicator--0b7f0000-0000-4000-8000-00000000000b","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Y cert","pattern":"[ipv4-addr:value = ''198.51.100.11'']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}');
INSERT INTO public.object_versions VALUES (3, 'indicator--0b7f0000-0000-4000-8000-00000000000b', 'indicator', '2.1', 1769904000000000, 1769904000000000, 1796552525366724, '0b7f0a6e-2222-4222-8222-222222222222
', true, '{"type":"indicator","spec_version":"2.1","id":"indicator--0b7f0000-0000-4000-8000-00000000000b","created":"2026-01-01T00:00:00.000Z","modified":"2026-02-01T00:00:00.000Z","name":"Y partner","pattern":"[ipv4-addr:value = ''198.51.100.12'']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}');


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_version VALUES (1);


--
-- Data for Name: status; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.status VALUES ('092d2b91-8829-4ea5-83ea-1c7817a1fae7', 'feeds', 1796552525351892, '{"id":"092d2b91-8829-4ea5-83ea-1c7817a1fae7","status":"complete","request_timestamp":"2026-12-06T10:22:05.351199Z","total_count":2,"success_count":2,"failure_count":0,"pending_count":0,"successes":[{"id":"indicator--0b7f0000-0000-4000-8000-00000000000a","version":"2026-01-01T00:00:00.000000Z"},{"id":"indicator--0b7f0000-0000-4000-8000-00000000000b","version":"2026-01-01T00:00:00.000000Z"}]}');
INSERT INTO public.status VALUES ('62310165-eeb1-4652-899d-8da1ad7a7f21', 'feeds', 1796552525366987, '{"id":"62310165-eeb1-4652-899d-8da1ad7a7f21","status":"complete","request_timestamp":"2026-12-06T10:22:05.366374Z","total_count":2,"success_count":2,"failure_count":0,"pending_count":0,"successes":[{"id":"indicator--0b7f0000-0000-4000-8000-00000000000a","version":"2026-01-01T00:00:00.000000Z"},{"id":"indicator--0b7f0000-0000-4000-8000-00000000000b","version":"2026-02-01T00:00:00.000000Z"}]}');


--
-- Data for Name: views; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.views VALUES (1, '0b7f0a6e-1111-4111-8111-111111111111', 'stored', NULL, 'active', NULL, 0, 2, '', 1796552522384149, NULL);
INSERT INTO public.views VALUES (2, '0b7f0a6e-2222-4222-8222-222222222222', 'stored', NULL, 'active', NULL, 0, 2, '', 1796552522384257, NULL);
INSERT INTO public.views VALUES (3, '0b7f0a6e-4444-4444-8444-444444444444', 'query', 'type:indicator', 'active', NULL, 0, 2, '', 1796552522384272, NULL);


--
-- Name: object_versions_vid_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.object_versions_vid_seq', 3, true);


--
-- Name: views_view_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.views_view_id_seq', 3, true);


--
-- Name: clock clock_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.clock
    ADD CONSTRAINT clock_pkey PRIMARY KEY (one);


--
-- Name: entries entries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entries
    ADD CONSTRAINT entries_pkey PRIMARY KEY (view_id, date_added);


--
-- Name: maintenance maintenance_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.maintenance
    ADD CONSTRAINT maintenance_pkey PRIMARY KEY (one);


--
-- Name: object_versions object_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.object_versions
    ADD CONSTRAINT object_versions_pkey PRIMARY KEY (vid);


--
-- Name: status status_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.status
    ADD CONSTRAINT status_pkey PRIMARY KEY (id);


--
-- Name: views views_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.views
    ADD CONSTRAINT views_pkey PRIMARY KEY (view_id);


--
-- Name: entries_by_object; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX entries_by_object ON public.entries USING btree (view_id, stix_id, version_us);


--
-- Name: entries_by_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX entries_by_type ON public.entries USING btree (view_id, type, date_added);


--
-- Name: entries_by_version; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX entries_by_version ON public.entries USING btree (view_id, vid);


--
-- Name: entries_latest; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX entries_latest ON public.entries USING btree (view_id, date_added) WHERE is_last;


--
-- Name: entries_provisional; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX entries_provisional ON public.entries USING btree (view_id) WHERE provisional;


--
-- Name: object_versions_by_version; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX object_versions_by_version ON public.object_versions USING btree (stix_id, version_key);


--
-- Name: object_versions_latest; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX object_versions_latest ON public.object_versions USING btree (vid) WHERE is_latest;


--
-- Name: object_versions_latest_by_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX object_versions_latest_by_id ON public.object_versions USING btree (stix_id) WHERE is_latest;


--
-- Name: status_by_age; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX status_by_age ON public.status USING btree (created_us);


--
-- Name: views_by_collection; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX views_by_collection ON public.views USING btree (collection, state);


--
-- PostgreSQL database dump complete
--


