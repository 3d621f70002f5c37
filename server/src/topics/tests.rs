use super::*;

fn settings() -> TopicSettings {
    TopicSettings::new("DefaultCluster", "broker-a")
}

fn in_memory(auto_create: bool) -> Topics {
    let settings = TopicSettings {
        auto_create_topics: auto_create,
        ..settings()
    };
    Topics::open(settings, None).unwrap()
}

#[test]
fn tbw102_is_inheritable_with_default_queue_count_when_auto_create_is_on() {
    let topics = in_memory(true);
    let tbw = topics.get(AUTO_CREATE_TOPIC).unwrap();
    assert_eq!(tbw.perm, PERM_INHERIT | PERM_READ | PERM_WRITE);
    assert_eq!((tbw.read_queue_nums, tbw.write_queue_nums), (8, 8));
}

#[test]
fn tbw102_lacks_inherit_when_auto_create_is_off() {
    let topics = in_memory(false);
    assert_eq!(
        topics.get(AUTO_CREATE_TOPIC).unwrap().perm,
        PERM_READ | PERM_WRITE
    );
}

#[test]
fn system_topics_exist_at_start() {
    let topics = in_memory(true);
    let expect = [
        (SELF_TEST_TOPIC, 1, 6),
        ("DefaultCluster", 16, 7),
        ("broker-a", 1, 7),
        (OFFSET_MOVED_EVENT, 1, 6),
        (SCHEDULE_TOPIC, 18, 6),
        ("DefaultCluster_REPLY_TOPIC", 1, 6),
        (TRANS_HALF_TOPIC, 1, 6),
        (TRANS_OP_HALF_TOPIC, 1, 6),
    ];
    for (name, queues, perm) in expect {
        let config = topics.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(config.write_queue_nums, queues, "{name}");
        assert_eq!(config.read_queue_nums, queues, "{name}");
        assert_eq!(config.perm, perm, "{name}");
    }
}

#[test]
fn auto_create_takes_min_of_requested_and_template_write_queues() {
    let topics = in_memory(true);
    let (config, created) = topics
        .auto_create_for_send("T_NEW", AUTO_CREATE_TOPIC, 4)
        .unwrap();
    assert!(created);
    assert_eq!((config.read_queue_nums, config.write_queue_nums), (4, 4));
    assert_eq!(
        config.perm,
        PERM_READ | PERM_WRITE,
        "INHERIT is not passed on"
    );

    let (config, _) = topics
        .auto_create_for_send("T_BIG", AUTO_CREATE_TOPIC, 64)
        .unwrap();
    assert_eq!(
        config.write_queue_nums, 8,
        "capped by TBW102's 8 write queues"
    );
}

#[test]
fn auto_create_of_an_existing_topic_reports_not_created() {
    let topics = in_memory(true);
    topics
        .auto_create_for_send("T1", AUTO_CREATE_TOPIC, 4)
        .unwrap();
    let version = topics.data_version();
    let (_, created) = topics
        .auto_create_for_send("T1", AUTO_CREATE_TOPIC, 2)
        .unwrap();
    assert!(!created);
    assert_eq!(topics.data_version(), version);
    assert_eq!(topics.get("T1").unwrap().write_queue_nums, 4);
}

#[test]
fn auto_create_off_refuses_unknown_topic() {
    let topics = in_memory(false);
    let err = topics
        .auto_create_for_send("T_NEW", AUTO_CREATE_TOPIC, 4)
        .unwrap_err();
    assert!(matches!(err, TopicError::NotExist { ref topic } if topic == "T_NEW"));
    assert!(topics.get("T_NEW").is_none());
}

#[test]
fn auto_create_off_still_ignores_a_loaded_tbw102_inherit_bit() {
    let dir = tempfile::tempdir().unwrap();
    Topics::open(settings(), Some(dir.path())).unwrap();
    let off = TopicSettings {
        auto_create_topics: false,
        ..settings()
    };
    let topics = Topics::open(off, Some(dir.path())).unwrap();
    assert_eq!(
        topics.get(AUTO_CREATE_TOPIC).unwrap().perm & PERM_INHERIT,
        1
    );
    assert!(matches!(
        topics.auto_create_for_send("T_NEW", AUTO_CREATE_TOPIC, 4),
        Err(TopicError::NotExist { .. })
    ));
}

#[test]
fn auto_create_from_a_template_without_inherit_fails() {
    let topics = in_memory(true);
    assert!(matches!(
        topics.auto_create_for_send("T_NEW", SELF_TEST_TOPIC, 4),
        Err(TopicError::NotExist { .. })
    ));
    assert!(matches!(
        topics.auto_create_for_send("T_NEW", "NO_SUCH_TEMPLATE", 4),
        Err(TopicError::NotExist { .. })
    ));
}

#[test]
fn auto_create_copies_the_template_filter_type() {
    let topics = in_memory(true);
    topics
        .create_or_update(TopicConfig {
            perm: 7,
            topic_filter_type: TopicFilterType::MultiTag,
            ..TopicConfig::new("MY_TEMPLATE")
        })
        .unwrap();
    let (config, _) = topics
        .auto_create_for_send("T_M", "MY_TEMPLATE", 4)
        .unwrap();
    assert_eq!(config.topic_filter_type, TopicFilterType::MultiTag);
    assert_eq!(config.write_queue_nums, 4);
}

#[test]
fn retry_topic_falls_back_to_one_queue_without_auto_create() {
    let topics = in_memory(false);
    let (config, created) = topics
        .auto_create_for_send("%RETRY%cg1", AUTO_CREATE_TOPIC, 4)
        .unwrap();
    assert!(created);
    assert_eq!((config.read_queue_nums, config.write_queue_nums), (1, 1));
    assert_eq!(config.perm, PERM_READ | PERM_WRITE);
}

#[test]
fn create_retry_topic_has_one_read_write_queue_and_is_idempotent() {
    let topics = in_memory(true);
    let (config, created) = topics.create_retry_topic("cg1").unwrap();
    assert!(created);
    assert_eq!(config.topic_name, "%RETRY%cg1");
    assert_eq!(
        (config.read_queue_nums, config.write_queue_nums, config.perm),
        (1, 1, 6)
    );
    let (_, created) = topics.create_retry_topic("cg1").unwrap();
    assert!(!created);
}

#[test]
fn create_dlq_topic_has_one_read_write_queue() {
    let topics = in_memory(true);
    let (config, created) = topics.create_dlq_topic("cg1").unwrap();
    assert!(created);
    assert_eq!(config.topic_name, "%DLQ%cg1");
    assert_eq!(
        (config.read_queue_nums, config.write_queue_nums, config.perm),
        (1, 1, 6)
    );
}

#[test]
fn retry_topic_of_an_invalid_group_is_refused() {
    let topics = in_memory(true);
    assert!(matches!(
        topics.create_retry_topic("bad group"),
        Err(TopicError::InvalidName { .. })
    ));
}

#[test]
fn topic_names_follow_the_rocketmq_pattern() {
    for ok in ["T", "a-b_c", "%RETRY%g", "x|y", "0123456789", "ABCxyz"] {
        assert_eq!(validate_topic_name(ok), Ok(()), "{ok}");
    }
    assert_eq!(validate_topic_name(""), Err(NameError::Blank));
    assert_eq!(validate_topic_name("   "), Err(NameError::Blank));
    for (bad, c) in [
        ("a b", ' '),
        ("a.b", '.'),
        ("a/b", '/'),
        ("tópico", 'ó'),
        ("a\nb", '\n'),
    ] {
        assert_eq!(
            validate_topic_name(bad),
            Err(NameError::IllegalCharacter { character: c }),
            "{bad:?}"
        );
    }
}

#[test]
fn topic_name_length_limit_is_127_or_255_for_retry_and_dlq() {
    assert_eq!(validate_topic_name(&"a".repeat(127)), Ok(()));
    assert_eq!(
        validate_topic_name(&"a".repeat(128)),
        Err(NameError::TooLong {
            length: 128,
            max: 127
        })
    );
    let retry = format!("%RETRY%{}", "g".repeat(248));
    assert_eq!(retry.len(), 255);
    assert_eq!(validate_topic_name(&retry), Ok(()));
    assert_eq!(
        validate_topic_name(&format!("{retry}g")),
        Err(NameError::TooLong {
            length: 256,
            max: 255
        })
    );
    let dlq = format!("%DLQ%{}", "g".repeat(200));
    assert_eq!(validate_topic_name(&dlq), Ok(()));
}

#[test]
fn send_to_not_allowed_topics_is_no_permission() {
    for topic in NOT_ALLOWED_SEND_TOPICS {
        assert!(
            matches!(
                check_send_topic(topic),
                Err(TopicError::SendNotAllowed { .. })
            ),
            "{topic}"
        );
    }
    assert!(check_send_topic("TopicTest").is_ok());
    assert!(check_send_topic(AUTO_CREATE_TOPIC).is_ok());
    assert!(matches!(
        check_send_topic("a b"),
        Err(TopicError::InvalidName { .. })
    ));
}

#[test]
fn queue_id_must_be_below_the_larger_queue_count() {
    let config = TopicConfig {
        read_queue_nums: 4,
        write_queue_nums: 2,
        ..TopicConfig::new("T")
    };
    assert!(check_queue_id(&config, 0).is_ok());
    assert!(check_queue_id(&config, 3).is_ok());
    assert!(matches!(
        check_queue_id(&config, 4),
        Err(TopicError::QueueIdOutOfRange {
            queue_id: 4,
            queue_nums: 4,
            ..
        })
    ));
    assert!(check_queue_id(&config, -1).is_err());
}

#[test]
fn admin_create_update_and_delete_bump_the_data_version() {
    let topics = in_memory(true);
    let v0 = topics.data_version().counter;
    let config = TopicConfig {
        read_queue_nums: 8,
        write_queue_nums: 8,
        ..TopicConfig::new("ADMIN_T")
    };
    assert!(topics.create_or_update(config.clone()).unwrap().changed);
    assert_eq!(topics.data_version().counter, v0 + 1);
    assert!(
        !topics.create_or_update(config.clone()).unwrap().changed,
        "same config: no change"
    );
    assert_eq!(topics.data_version().counter, v0 + 1);
    assert!(
        topics
            .create_or_update(TopicConfig { perm: 4, ..config })
            .unwrap()
            .changed
    );
    assert_eq!(topics.get("ADMIN_T").unwrap().perm, 4);
    assert_eq!(topics.data_version().counter, v0 + 2);
    assert!(topics.delete("ADMIN_T").unwrap().changed);
    assert!(topics.get("ADMIN_T").is_none());
    assert_eq!(topics.data_version().counter, v0 + 3);
    assert!(!topics.delete("ADMIN_T").unwrap().changed);
    assert_eq!(topics.data_version().counter, v0 + 3);
}

#[test]
fn admin_may_not_touch_system_topics() {
    let topics = in_memory(true);
    for topic in [AUTO_CREATE_TOPIC, SCHEDULE_TOPIC, "rmq_sys_x"] {
        assert!(matches!(
            topics.create_or_update(TopicConfig::new(topic)),
            Err(TopicError::SystemTopic { .. })
        ));
        assert!(matches!(
            topics.delete(topic),
            Err(TopicError::SystemTopic { .. })
        ));
    }
}

#[test]
fn admin_config_out_of_range_is_refused() {
    let topics = in_memory(true);
    for config in [
        TopicConfig {
            read_queue_nums: -1,
            ..TopicConfig::new("T")
        },
        TopicConfig {
            write_queue_nums: MAX_QUEUE_NUMS + 1,
            ..TopicConfig::new("T")
        },
        TopicConfig {
            perm: 16,
            ..TopicConfig::new("T")
        },
    ] {
        assert!(matches!(
            topics.create_or_update(config),
            Err(TopicError::InvalidConfig { .. })
        ));
    }
}

#[test]
fn an_old_snapshot_does_not_change_after_a_write() {
    let topics = in_memory(true);
    let before = topics.table();
    topics
        .auto_create_for_send("LATER", AUTO_CREATE_TOPIC, 4)
        .unwrap();
    assert!(before.get("LATER").is_none());
    assert!(topics.table().get("LATER").is_some());
}

#[test]
fn snapshot_lists_every_topic_with_the_current_version() {
    let topics = in_memory(true);
    topics.create_retry_topic("cg").unwrap();
    let wrapper = topics.snapshot();
    assert_eq!(wrapper.topic_config_table.len(), topics.table().len());
    assert!(wrapper.topic_config_table.contains_key("%RETRY%cg"));
    assert_eq!(wrapper.data_version, topics.data_version());
}

#[test]
fn concurrent_auto_creates_create_each_topic_once() {
    let topics = Arc::new(in_memory(true));
    let v0 = topics.data_version().counter;
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let topics = Arc::clone(&topics);
            std::thread::spawn(move || {
                (0..50)
                    .filter(|i| {
                        topics
                            .auto_create_for_send(&format!("T{i}"), AUTO_CREATE_TOPIC, 4)
                            .unwrap()
                            .1
                    })
                    .count()
            })
        })
        .collect();
    let created: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(created, 50);
    assert_eq!(topics.data_version().counter, v0 + 50);
}

#[test]
fn topics_persist_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    topics
        .auto_create_for_send("PERSISTED", AUTO_CREATE_TOPIC, 3)
        .unwrap();
    topics.create_retry_topic("cg1").unwrap();
    let version = topics.data_version();
    drop(topics);
    assert!(dir.path().join("topics.json").exists());
    assert!(!dir.path().join("topics.json.tmp").exists());

    let reopened = Topics::open(settings(), Some(dir.path())).unwrap();
    assert_eq!(reopened.get("PERSISTED").unwrap().write_queue_nums, 3);
    assert!(reopened.get("%RETRY%cg1").is_some());
    assert_eq!(reopened.data_version(), version, "nothing added at reopen");
}

#[test]
fn a_deleted_topic_stays_deleted_after_reload() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    topics.create_or_update(TopicConfig::new("GONE")).unwrap();
    topics.delete("GONE").unwrap();
    drop(topics);
    let reopened = Topics::open(settings(), Some(dir.path())).unwrap();
    assert!(reopened.get("GONE").is_none());
}

#[test]
fn a_java_broker_topics_json_loads() {
    // Shaped like a RocketMQ 4.x/5.x broker's config/topics.json: fastjson pretty print with
    // tabs, an enum as ordinal, numbers as strings, an unquoted key, 5.x extras and getters.
    let java = "{\n\t\"dataVersion\":{\n\t\t\"counter\":17,\n\t\t\"stateVersion\":0,\n\t\t\"timestamp\":1715000000000\n\t},\n\
\t\"topicConfigTable\":{\n\
\t\t\"TopicTest\":{\n\t\t\t\"order\":false,\n\t\t\t\"perm\":6,\n\t\t\t\"readQueueNums\":4,\n\t\t\t\"topicFilterType\":\"SINGLE_TAG\",\n\t\t\t\"topicName\":\"TopicTest\",\n\t\t\t\"topicSysFlag\":0,\n\t\t\t\"writeQueueNums\":4,\n\t\t\t\"attributes\":{},\n\t\t\t\"readable\":true,\n\t\t\t\"writeable\":true\n\t\t},\n\
\t\t\"TBW102\":{\"order\":false,\"perm\":7,\"readQueueNums\":8,\"topicFilterType\":\"SINGLE_TAG\",\"topicName\":\"TBW102\",\"topicSysFlag\":0,\"writeQueueNums\":8},\n\
\t\tMULTI:{\"perm\":\"6\",\"readQueueNums\":\"2\",\"writeQueueNums\":2,\"topicFilterType\":1,\"topicName\":\"MULTI\"}\n\
\t},\n\t\"topicQueueMappingInfoMap\":{}\n}";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topics.json"), java).unwrap();

    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    let test = topics.get("TopicTest").unwrap();
    assert_eq!(
        (test.read_queue_nums, test.write_queue_nums, test.perm),
        (4, 4, 6)
    );
    let multi = topics.get("MULTI").unwrap();
    assert_eq!(multi.topic_filter_type, TopicFilterType::MultiTag);
    assert_eq!((multi.read_queue_nums, multi.perm), (2, 6));
    assert_eq!(topics.get(AUTO_CREATE_TOPIC).unwrap().perm, 7);
    // The file lacked the other system topics: added, so the version moved past 17.
    assert!(topics.get(SCHEDULE_TOPIC).is_some());
    assert_eq!(topics.data_version().counter, 18);
}

#[test]
fn a_file_entry_overrides_the_system_topic_default() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    drop(topics);
    let path = dir.path().join("topics.json");
    let mut wrapper = TopicConfigSerializeWrapper::decode(&std::fs::read(&path).unwrap()).unwrap();
    wrapper
        .topic_config_table
        .get_mut(AUTO_CREATE_TOPIC)
        .unwrap()
        .write_queue_nums = 2;
    std::fs::write(&path, wrapper.encode().unwrap()).unwrap();

    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    let (config, _) = topics
        .auto_create_for_send("T", AUTO_CREATE_TOPIC, 4)
        .unwrap();
    assert_eq!(config.write_queue_nums, 2);
}

#[test]
fn a_broken_topics_json_is_an_error_not_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topics.json"), b"{\"topicConfigTable\":").unwrap();
    assert!(matches!(
        Topics::open(settings(), Some(dir.path())),
        Err(TopicError::Corrupt { .. })
    ));
}

#[test]
fn a_leftover_tmp_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    Topics::open(settings(), Some(dir.path())).unwrap();
    std::fs::write(dir.path().join("topics.json.tmp"), b"garbage").unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    assert!(topics.get(AUTO_CREATE_TOPIC).is_some());
}

#[test]
fn open_creates_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("store").join("config");
    Topics::open(settings(), Some(&config_dir)).unwrap();
    assert!(config_dir.join("topics.json").exists());
}

#[test]
fn an_admin_change_that_cannot_be_persisted_reports_the_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    // A non-empty directory where the file should be: the rename over it fails.
    let path = dir.path().join("topics.json");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("occupied"), b"x").unwrap();

    let change = topics
        .create_or_update(TopicConfig::new("UNSAVED"))
        .unwrap();
    assert!(change.changed);
    let runtime = compio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(change.durable()).unwrap_err();
    assert!(matches!(err, TopicError::NotPersisted { .. }), "{err:?}");
}

#[test]
fn a_burst_of_changes_is_durable_once_the_last_is() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(settings(), Some(dir.path())).unwrap();
    let groups: Vec<String> = (0..500).map(|i| format!("group-{i}")).collect();
    assert!(topics
        .create_retry_topics(groups.iter().map(String::as_str))
        .unwrap());
    let change = topics.create_or_update(TopicConfig::new("LAST")).unwrap();
    let runtime = compio::runtime::Runtime::new().unwrap();
    runtime.block_on(change.durable()).unwrap();
    let reopened = Topics::open(settings(), Some(dir.path())).unwrap();
    assert!(reopened.get("LAST").is_some());
    assert!(reopened.get("%RETRY%group-499").is_some());
}

#[test]
fn topics_the_log_holds_but_the_table_lacks_are_recreated() {
    let topics = in_memory(true);
    let queues = vec![
        ("LOST".to_owned(), 0),
        ("LOST".to_owned(), 5),
        (AUTO_CREATE_TOPIC.to_owned(), 0),
    ];
    assert_eq!(topics.recover_from_log(&queues), vec!["LOST".to_owned()]);
    let lost = topics.get("LOST").unwrap();
    assert_eq!((lost.read_queue_nums, lost.write_queue_nums), (6, 6));
    assert!(is_readable(lost.perm) && is_writeable(lost.perm));
    assert!(topics.recover_from_log(&queues).is_empty(), "only once");
}

#[test]
fn a_replicated_message_makes_its_topic_and_queue_readable_on_a_slave() {
    let topics = in_memory(false);
    assert!(topics.ensure_from_replicated("Early", 2));
    let early = topics.get("Early").unwrap();
    assert_eq!((early.read_queue_nums, early.write_queue_nums), (3, 3));
    assert!(is_readable(early.perm));
    assert!(
        !topics.ensure_from_replicated("Early", 0),
        "queue 0 is known"
    );
    assert!(
        topics.ensure_from_replicated("Early", 5),
        "a higher queue widens"
    );
    assert_eq!(topics.get("Early").unwrap().read_queue_nums, 6);
    assert!(!topics.ensure_from_replicated("bad topic name", 0));
    assert!(!topics.ensure_from_replicated("Early", -1));
}
