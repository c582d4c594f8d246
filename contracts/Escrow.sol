// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title fedmarket escrow
/// @notice Holds each task's reward until its operator releases it to the
/// contributors of accepted results, at most once per result id.
///
/// Rules:
/// - fund: the creator deposits exactly reward * maxPayouts, naming the
///   operator (who will release) and a deadline.
/// - fundScored: as fund, with a per-result cap (at least the reward, at
///   most the deposit) for tasks that pay by measured contribution.
/// - release / releaseBatch: the operator only, while the task is open
///   (also after the deadline, until the creator reclaims the rest), once
///   per result id, never beyond the deposit.
/// - releaseScored: as releaseBatch with an amount per result (each at
///   most the task's cap, in all at most what the task holds), and the
///   hash of the scoring report those amounts come from, emitted as
///   Scored(taskId, round, reportHash) so anyone can fetch the report and
///   recompute them.
/// - refund: the creator, after the deadline, takes back what is unpaid.
/// - cancel: the operator ends the task early (the creator asked, the
///   operator agreed off chain); what is unpaid goes back to the creator.
///
/// Payments are pushed with a bounded amount of gas and without copying
/// return data; when a push fails (a contract recipient that reverts or
/// needs more gas) the amount is credited and the recipient pulls it with
/// withdraw(). A bad recipient therefore can neither block a batch nor
/// burn the operator's gas beyond PUSH_GAS. All state changes happen
/// before any transfer, and a reentrancy lock covers every function that
/// moves ether.
///
/// Batch semantics: in releaseBatch a result id that is already paid is
/// skipped and reported with an AlreadyPaid event, so that a payout
/// worker retrying after a crash cannot fail a whole batch for one paid
/// id. Every other problem (not the operator, task not open, not enough
/// funds left, zero recipient, length mismatch) reverts the whole batch.
contract Escrow {
    enum State {
        None,
        Open,
        Refunded,
        Cancelled
    }

    struct Task {
        address creator;
        uint64 deadline;
        uint32 maxPayouts;
        address operator;
        uint32 paidCount;
        State state;
        uint256 reward;
        uint256 balance;
        /// Most one result may receive; 0 means the reward (fund()).
        uint256 maxPerResult;
    }

    /// Gas given to a recipient with each push: enough for smart wallets'
    /// receive hooks, too little to matter to the operator.
    uint256 public constant PUSH_GAS = 50000;

    mapping(bytes32 => Task) public tasks;
    /// Result ids paid, across all tasks.
    mapping(bytes32 => bool) public paid;
    /// Amounts whose push failed, waiting for withdraw().
    mapping(address => uint256) public owed;

    uint256 private lock = 1;

    event Funded(
        bytes32 indexed taskId,
        address indexed creator,
        address indexed operator,
        uint256 reward,
        uint32 maxPayouts,
        uint64 deadline
    );
    event Released(
        bytes32 indexed taskId,
        bytes32 indexed resultId,
        address indexed to,
        uint256 amount
    );
    event AlreadyPaid(bytes32 indexed taskId, bytes32 indexed resultId);
    event Scored(bytes32 indexed taskId, uint32 indexed round, bytes32 reportHash);
    event Refunded(
        bytes32 indexed taskId,
        address indexed creator,
        uint256 amount,
        bool cancelled
    );
    event Credited(address indexed to, uint256 amount);
    event Withdrawn(address indexed to, uint256 amount);

    modifier nonReentrant() {
        require(lock == 1, "reentrant call");
        lock = 2;
        _;
        lock = 1;
    }

    function fund(
        bytes32 taskId,
        address operator,
        uint64 deadline,
        uint256 reward,
        uint32 maxPayouts
    ) external payable {
        open(taskId, operator, deadline, reward, maxPayouts, 0);
    }

    function fundScored(
        bytes32 taskId,
        address operator,
        uint64 deadline,
        uint256 reward,
        uint32 maxPayouts,
        uint256 maxPerResult
    ) external payable {
        require(maxPerResult >= reward, "cap below reward");
        require(maxPerResult <= msg.value, "cap above deposit");
        open(taskId, operator, deadline, reward, maxPayouts, maxPerResult);
    }

    function release(
        bytes32 taskId,
        bytes32 resultId,
        address payable to
    ) external nonReentrant {
        Task storage t = openTaskOfOperator(taskId);
        require(!paid[resultId], "already paid");
        pay(t, taskId, resultId, to);
    }

    function releaseBatch(
        bytes32 taskId,
        bytes32[] calldata resultIds,
        address payable[] calldata to
    ) external nonReentrant {
        require(resultIds.length == to.length, "length mismatch");
        Task storage t = openTaskOfOperator(taskId);
        for (uint256 i = 0; i < resultIds.length; i++) {
            if (paid[resultIds[i]]) {
                emit AlreadyPaid(taskId, resultIds[i]);
                continue;
            }
            pay(t, taskId, resultIds[i], to[i]);
        }
    }

    function releaseScored(
        bytes32 taskId,
        uint32 round,
        bytes32 reportHash,
        bytes32[] calldata resultIds,
        address payable[] calldata to,
        uint256[] calldata amounts
    ) external nonReentrant {
        require(
            resultIds.length == to.length && to.length == amounts.length,
            "length mismatch"
        );
        Task storage t = openTaskOfOperator(taskId);
        uint256 cap = t.maxPerResult == 0 ? t.reward : t.maxPerResult;
        emit Scored(taskId, round, reportHash);
        for (uint256 i = 0; i < resultIds.length; i++) {
            if (paid[resultIds[i]]) {
                emit AlreadyPaid(taskId, resultIds[i]);
                continue;
            }
            require(amounts[i] > 0 && amounts[i] <= cap, "amount above cap");
            payAmount(t, taskId, resultIds[i], to[i], amounts[i]);
        }
    }

    function refund(bytes32 taskId) external nonReentrant {
        Task storage t = tasks[taskId];
        require(t.state != State.None, "no such task");
        require(msg.sender == t.creator, "not creator");
        require(t.state == State.Open, "task closed");
        require(block.timestamp > t.deadline, "deadline not reached");
        close(t, taskId, State.Refunded);
    }

    function cancel(bytes32 taskId) external nonReentrant {
        Task storage t = openTaskOfOperator(taskId);
        close(t, taskId, State.Cancelled);
    }

    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        require(amount > 0, "nothing owed");
        owed[msg.sender] = 0;
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        require(ok, "withdraw failed");
        emit Withdrawn(msg.sender, amount);
    }

    function openTaskOfOperator(bytes32 taskId) private view returns (Task storage t) {
        t = tasks[taskId];
        require(t.state != State.None, "no such task");
        require(msg.sender == t.operator, "not operator");
        require(t.state == State.Open, "task closed");
    }

    function open(
        bytes32 taskId,
        address operator,
        uint64 deadline,
        uint256 reward,
        uint32 maxPayouts,
        uint256 maxPerResult
    ) private {
        require(tasks[taskId].state == State.None, "task exists");
        require(operator != address(0), "zero operator");
        require(reward > 0, "zero reward");
        require(maxPayouts > 0, "zero payouts");
        require(deadline > block.timestamp, "deadline passed");
        require(msg.value == reward * maxPayouts, "wrong deposit");
        tasks[taskId] = Task({
            creator: msg.sender,
            deadline: deadline,
            maxPayouts: maxPayouts,
            operator: operator,
            paidCount: 0,
            state: State.Open,
            reward: reward,
            balance: msg.value,
            maxPerResult: maxPerResult
        });
        emit Funded(taskId, msg.sender, operator, reward, maxPayouts, deadline);
    }

    function pay(
        Task storage t,
        bytes32 taskId,
        bytes32 resultId,
        address payable to
    ) private {
        payAmount(t, taskId, resultId, to, t.reward);
    }

    function payAmount(
        Task storage t,
        bytes32 taskId,
        bytes32 resultId,
        address payable to,
        uint256 amount
    ) private {
        require(to != address(0), "zero recipient");
        require(t.paidCount < t.maxPayouts && t.balance >= amount, "no funds left");
        paid[resultId] = true;
        t.paidCount += 1;
        t.balance -= amount;
        emit Released(taskId, resultId, to, amount);
        push(to, amount);
    }

    function close(Task storage t, bytes32 taskId, State how) private {
        uint256 amount = t.balance;
        t.balance = 0;
        t.state = how;
        emit Refunded(taskId, t.creator, amount, how == State.Cancelled);
        if (amount > 0) push(payable(t.creator), amount);
    }

    /// Sends amount with at most PUSH_GAS gas, ignoring return data; on
    /// failure the amount waits in owed[to] for withdraw().
    function push(address payable to, uint256 amount) private {
        bool ok;
        uint256 gasLimit = PUSH_GAS;
        assembly {
            ok := call(gasLimit, to, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            owed[to] += amount;
            emit Credited(to, amount);
        }
    }
}
