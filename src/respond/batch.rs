//! Requests of instances worked on together, sent as one. The marks of instances cycled together
//! carry the same tags, and `CreateTags` takes many resources; their waits read the same
//! associations, and `DescribeIamInstanceProfileAssociations` takes many instance ids. EC2
//! throttles each action per account and Region, and a fleet's cycle would otherwise spend two
//! `CreateTags` and two or more reads per instance.
//!
//! One request per key is in flight at a time. The first asker sends at once (with those who ask
//! in the same turn of the runtime), so an instance alone waits no longer than before; askers who
//! come while it is in flight are sent together next, by the first of them.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// What a queued asker is told: its answer, or that it sends the next batch.
enum Share<T> {
    Answer(Result<T>),
    Lead,
}

struct Slot<T> {
    in_flight: bool,
    queued: Vec<(String, oneshot::Sender<Share<T>>)>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            in_flight: false,
            queued: Vec::new(),
        }
    }
}

/// Batches by key; each batch answers every id it was sent for.
pub struct Batches<K, T> {
    slots: Mutex<HashMap<K, Slot<T>>>,
}

impl<K: Hash + Eq + Clone, T: Clone> Default for Batches<K, T> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, T: Clone> Batches<K, T> {
    /// `id`'s answer from a batch under `key`; `send` sends one batch for the ids given, and
    /// answers for each (an id it does not answer gets `absent`).
    pub async fn ask<S, F>(&self, key: K, id: &str, absent: T, send: S) -> Result<T>
    where
        S: Fn(Vec<String>) -> F,
        F: Future<Output = Result<HashMap<String, T>>>,
    {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key.clone()).or_default();
            if slot.in_flight {
                slot.queued.push((id.to_owned(), tx));
                false
            } else {
                slot.in_flight = true;
                true
            }
        };
        if !lead {
            match rx.await {
                Ok(Share::Answer(answer)) => return answer,
                Ok(Share::Lead) => {}
                Err(_) => return Err(Error::Unexpected(format!("the batched request for {id} was abandoned"))),
            }
        }
        let mut leading = Leading {
            batches: self,
            key,
            done: false,
        };
        let answer = leading.send(id, absent, send).await;
        leading.hand_over();
        answer
    }
}

/// The asker sending a batch; if it is dropped part-way, the next asker still gets its turn.
struct Leading<'a, K: Hash + Eq + Clone, T: Clone> {
    batches: &'a Batches<K, T>,
    key: K,
    done: bool,
}

impl<K: Hash + Eq + Clone, T: Clone> Leading<'_, K, T> {
    async fn send<S, F>(&self, id: &str, absent: T, send: S) -> Result<T>
    where
        S: Fn(Vec<String>) -> F,
        F: Future<Output = Result<HashMap<String, T>>>,
    {
        // Those who ask in this same turn (instances started together) join this batch.
        tokio::task::yield_now().await;
        let joined = {
            let mut slots = self.batches.slots.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut slots.entry(self.key.clone()).or_default().queued)
        };
        let mut ids: Vec<String> = joined.iter().map(|(i, _)| i.clone()).collect();
        ids.push(id.to_owned());
        ids.sort();
        ids.dedup();
        let answers = send(ids).await;
        let answer_for = |id: &str| match &answers {
            Ok(found) => Ok(found.get(id).cloned().unwrap_or_else(|| absent.clone())),
            Err(e) => Err(e.clone()),
        };
        for (other, tx) in joined {
            let _ = tx.send(Share::Answer(answer_for(&other)));
        }
        answer_for(id)
    }

    /// The first asker queued meanwhile sends the next batch; with none, the key is idle.
    fn hand_over(&mut self) {
        self.done = true;
        let mut slots = self.batches.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(self.key.clone()).or_default();
        while !slot.queued.is_empty() {
            let (_, next) = slot.queued.remove(0);
            if next.send(Share::Lead).is_ok() {
                return;
            }
        }
        slot.in_flight = false;
    }
}

impl<K: Hash + Eq + Clone, T: Clone> Drop for Leading<'_, K, T> {
    fn drop(&mut self) {
        if !self.done {
            self.hand_over();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers each id with the number of the batch it went in, and counts the batches.
    fn numbered(sent: &AtomicUsize) -> impl Fn(Vec<String>) -> std::future::Ready<Result<HashMap<String, usize>>> + '_ {
        move |ids| {
            let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(Ok(ids.into_iter().map(|i| (i, n)).collect()))
        }
    }

    #[tokio::test]
    async fn askers_of_one_turn_share_one_request_and_a_lone_asker_sends_its_own() {
        let (batches, sent) = (Batches::<&str, usize>::default(), AtomicUsize::new(0));
        let ask = |id: &'static str| batches.ask("k", id, 0, numbered(&sent));
        let (a, b, c) = tokio::join!(ask("a"), ask("b"), ask("c"));
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1, 1, 1));
        assert_eq!(batches.ask("k", "d", 0, numbered(&sent)).await.unwrap(), 2);
        // Another key is another batch.
        assert_eq!(batches.ask("other", "a", 0, numbered(&sent)).await.unwrap(), 3);
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn askers_who_come_while_a_request_is_in_flight_go_together_next() {
        let batches = Batches::<&str, usize>::default();
        let sent = AtomicUsize::new(0);
        let slow = |ids: Vec<String>| {
            let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Ok(ids.into_iter().map(|i| (i, n)).collect())
            }
        };
        let later = |id: &'static str| {
            let slow = &slow;
            let batches = &batches;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                batches.ask("k", id, 0, slow).await
            }
        };
        let (first, b, c) = tokio::join!(batches.ask("k", "a", 0, &slow), later("b"), later("c"));
        assert_eq!((first.unwrap(), b.unwrap(), c.unwrap()), (1, 2, 2));
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_asker_in_it_and_an_unanswered_id_gets_the_default() {
        let batches = Batches::<&str, usize>::default();
        let failing = |_ids: Vec<String>| std::future::ready(Err(Error::Unexpected("throttled".into())));
        let (a, b) = tokio::join!(batches.ask("k", "a", 0, failing), batches.ask("k", "b", 0, failing));
        assert!(matches!((a, b), (Err(Error::Unexpected(_)), Err(Error::Unexpected(_)))));
        let only_a = |_ids: Vec<String>| std::future::ready(Ok(HashMap::from([("a".to_owned(), 7)])));
        let (a, b) = tokio::join!(batches.ask("k", "a", 0, only_a), batches.ask("k", "b", 0, only_a));
        assert_eq!((a.unwrap(), b.unwrap()), (7, 0));
    }
}
